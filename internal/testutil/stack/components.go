package stack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Component names, in start order; Down stops them in reverse.
const (
	ControlPlane = "controlplane"
	Redis        = "redis"
	Engine       = "engine"
	Fallback     = "fallback"
	Agent        = "agent"
	Prometheus   = "prometheus"
	Manager      = "manager"
	Gateway      = "gateway"
)

// Components lists every component in start order.
var Components = []string{ControlPlane, Redis, Engine, Fallback, Agent, Prometheus, Manager, Gateway}

// controlPlaneChildren are the programs the control plane component starts itself; it records
// their pids next to its own so Down can stop them even if it died.
var controlPlaneChildren = []string{"kube-apiserver", "etcd"}

// component is how one process is started and known to be ready.
type component struct {
	argv    []string
	env     []string
	timeout time.Duration // how long it may take to become ready
	ready   func(ctx context.Context) error
}

// component returns the start spec of the named component.
func (s *State) component(name string) (component, error) {
	switch name {
	case ControlPlane:
		return component{
			argv:    []string{filepath.Join(s.Bin, "qwen-demo"), "controlplane", "--dir", s.Dir},
			timeout: 3 * time.Minute, // a first kube-apiserver start on a busy 2-core machine
			ready: func(context.Context) error {
				_, err := os.Stat(s.Kubeconfig())
				return err
			},
		}, nil
	case Redis:
		return component{
			argv: []string{s.Tools.Redis, "--port", strconv.Itoa(s.Ports.Redis), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--dir", s.Path("redis"), "--daemonize", "no", "--loglevel", "warning"},
			timeout: 30 * time.Second,
			ready:   func(ctx context.Context) error { return redisPing(ctx, s.Ports.Redis) },
		}, nil
	case Engine, Fallback:
		model, port := s.Model, s.Ports.Engine
		if name == Fallback {
			model, port = s.FallbackModel, s.Ports.Fallback
		}
		return component{
			// The flags the operator renders for engine.type Simulator (internal/render), plus a
			// little latency so that streams are visibly streamed.
			argv: []string{s.Tools.Simulator, "--model", model, "--port", strconv.Itoa(port), "--force-dummy-tokenizer",
				"--max-model-len", "8192", "--mode", "random", "--time-to-first-token", "50ms", "--inter-token-latency", "10ms",
				"--enable-request-id-headers"},
			timeout: time.Minute,
			ready:   httpOK(URL(port) + "/health"),
		}, nil
	case Agent:
		return component{
			argv:    []string{filepath.Join(s.Bin, "qwen-demo"), "agent", "--dir", s.Dir},
			timeout: 30 * time.Second,
			ready:   httpOK(s.AgentURL() + "/healthz"),
		}, nil
	case Prometheus:
		return component{
			argv: []string{s.Tools.Prometheus, "--config.file=" + s.Path("prometheus", "prometheus.yml"),
				"--storage.tsdb.path=" + s.Path("prometheus", "data"),
				"--web.listen-address=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports.Prometheus)), "--log.level=warn"},
			timeout: time.Minute,
			ready:   httpOK(s.PrometheusURL() + "/-/ready"),
		}, nil
	case Manager:
		return component{
			argv: []string{filepath.Join(s.Bin, "manager"), "--kubeconfig", s.Kubeconfig(),
				"--health-probe-bind-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports.ManagerProbe)),
				"--metrics-bind-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports.ManagerMetrics)),
				"--metrics-secure=false", "--prometheus-url", s.PrometheusURL(), "--adaptive-interval", "2s"},
			timeout: time.Minute,
			ready:   httpOK(URL(s.Ports.ManagerProbe) + "/readyz"),
		}, nil
	case Gateway:
		svc := func(deployment string) string {
			return fmt.Sprintf("%s-%s.%s.svc:8000", s.Name, deployment, s.Namespace)
		}
		return component{
			// The rendered upstream URLs are cluster DNS names; --resolve maps them to the
			// agent's Service stand-ins in front of the simulators. --listen and --admin-listen
			// keep the gateway on loopback.
			argv: []string{filepath.Join(s.Bin, "gateway"), "--configmap", s.Namespace + "/" + s.Name + "-gateway",
				"--kubeconfig", s.Kubeconfig(), "--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports.Gateway)),
				"--admin-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports.GatewayAdmin)),
				"--resolve", svc("engine") + "=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports.EngineService)),
				"--resolve", svc("fallback") + "=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports.FallbackService)),
				"--shutdown-delay", "0s", "--shutdown-timeout", "5s"},
			timeout: 2 * time.Minute,
			ready:   httpOK(URL(s.Ports.Gateway) + "/readyz"),
		}, nil
	}
	return component{}, fmt.Errorf("unknown component %q (known: %s)", name, strings.Join(Components, ", "))
}

// prometheusConfig scrapes, every second, the gateway, both simulators, the GPU exporter and
// the operator, labelling the local processes with the namespace and pod names the signal
// presets select.
func (s *State) prometheusConfig() string {
	target := func(port int) string { return strconv.Quote(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))) }
	labels := func(pod string) string { return fmt.Sprintf("{namespace: %q, pod: %q}", s.Namespace, pod) }
	return fmt.Sprintf(`# Written by hack/demo (qwen-demo up).
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
- job_name: qwen-gateway
  static_configs:
  - {targets: [%s], labels: %s}
- job_name: engine
  static_configs:
  - {targets: [%s], labels: %s}
  - {targets: [%s], labels: %s}
- job_name: dcgm-exporter     # the agent; its series carry their own namespace/pod labels
  honor_labels: true
  static_configs:
  - {targets: [%s]}
- job_name: qwen-operator
  static_configs:
  - {targets: [%s]}
`, target(s.Ports.GatewayAdmin), labels(s.gatewayPod()),
		target(s.Ports.Engine), labels(s.enginePod()), target(s.Ports.Fallback), labels(s.fallbackPod()),
		target(s.Ports.Agent), target(s.Ports.ManagerMetrics))
}

func httpOK(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// redisPing sends PING in the inline protocol and expects +PONG.
func redisPing(ctx context.Context, port int) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("redis answered %q", strings.TrimSpace(line))
	}
	return nil
}

// httpGet returns the body of a 200 answer.
func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}
