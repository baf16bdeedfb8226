package stack

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/qwenops/qwen-operator/internal/testutil/proc"
)

// State is what Up decided, saved as stack.json in the state directory so that later
// commands (down, kill, start, gpu) and the agent find every address and path.
type State struct {
	// Dir is the state directory: kubeconfig, env, pids/, logs/, manifests/, data.
	Dir string `json:"dir"`
	// Root is the repository (config/crd/bases, hack/demo).
	Root string `json:"root"`
	// Bin holds manager, gateway and qwen-demo.
	Bin string `json:"bin"`
	// Namespace and Name of the demo QwenService ("ai", "qwen3").
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Models served by the engine and the fallback.
	Model         string `json:"model"`
	FallbackModel string `json:"fallbackModel"`
	// Ports on 127.0.0.1.
	Ports Ports `json:"ports"`
	// Tools are the paths of the external programs.
	Tools Tools `json:"tools"`
}

// Ports are the loopback ports of the components.
type Ports struct {
	APIServer int `json:"apiserver"`
	Gateway   int `json:"gateway"`
	// GatewayAdmin serves the gateway's /metrics.
	GatewayAdmin int `json:"gatewayAdmin"`
	Engine       int `json:"engine"`
	Fallback     int `json:"fallback"`
	Redis        int `json:"redis"`
	Prometheus   int `json:"prometheus"`
	Agent        int `json:"agent"`
	// EngineService and FallbackService are the agent's stand-ins for the engine and
	// fallback Services: proxies to the simulators that log each API request.
	EngineService   int `json:"engineService"`
	FallbackService int `json:"fallbackService"`
	ManagerProbe    int `json:"managerProbe"`
	ManagerMetrics  int `json:"managerMetrics"`
}

// Tools are the external programs the demo runs.
type Tools struct {
	Assets     string `json:"assets"` // kube-apiserver, etcd, kubectl
	Simulator  string `json:"simulator"`
	Redis      string `json:"redis"`
	Prometheus string `json:"prometheus"`
}

// defaultPorts are the ports `make demo` prefers, each replaced by a free one when taken.
var defaultPorts = Ports{APIServer: 6443, Gateway: 8080, GatewayAdmin: 9091, Engine: 8000, Fallback: 8001, Redis: 6379,
	Prometheus: 9090, Agent: 9400, EngineService: 18000, FallbackService: 18001, ManagerProbe: 8081, ManagerMetrics: 8082}

// pickPorts returns the preferred ports where free (preferred=false: all free ports chosen
// by the kernel), never the same port twice.
func pickPorts(preferred bool) (Ports, error) {
	p := defaultPorts
	fields := []*int{&p.APIServer, &p.Gateway, &p.GatewayAdmin, &p.Engine, &p.Fallback, &p.Redis, &p.Prometheus, &p.Agent, &p.EngineService, &p.FallbackService, &p.ManagerProbe, &p.ManagerMetrics}
	used := map[int]bool{}
	for _, f := range fields {
		if preferred && portFree(*f) && !used[*f] {
			used[*f] = true
			continue
		}
		for {
			port, err := proc.FreePort()
			if err != nil {
				return p, err
			}
			if !used[port] {
				*f, used[port] = port, true
				break
			}
		}
	}
	return p, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Path returns a path inside the state directory.
func (s *State) Path(elem ...string) string {
	return filepath.Join(append([]string{s.Dir}, elem...)...)
}

// Kubeconfig is the admin kubeconfig of the demo's API server.
func (s *State) Kubeconfig() string { return s.Path("kubeconfig") }

// KubectlPath is the kubectl built with the envtest binaries.
func (s *State) KubectlPath() string { return filepath.Join(s.Tools.Assets, "kubectl") }

// URL returns http://127.0.0.1:port.
func URL(port int) string { return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// GatewayURL is the OpenAI base URL clients use (with /v1).
func (s *State) GatewayURL() string { return URL(s.Ports.Gateway) + "/v1" }

// EngineURL and FallbackURL are the simulators' base URLs (their /admin/config injects failures).
func (s *State) EngineURL() string { return URL(s.Ports.Engine) }

// FallbackURL is the fallback simulator's base URL.
func (s *State) FallbackURL() string { return URL(s.Ports.Fallback) }

// PrometheusURL is the demo Prometheus.
func (s *State) PrometheusURL() string { return URL(s.Ports.Prometheus) }

// AgentURL is the agent (GPU exporter and its setter).
func (s *State) AgentURL() string { return URL(s.Ports.Agent) }

// pod names under which the local processes appear in metrics; they match the pod regexes of
// the signal presets (internal/telemetry) for the demo QwenService.
func (s *State) enginePod() string   { return s.Name + "-engine-local-0" }
func (s *State) fallbackPod() string { return s.Name + "-fallback-local-0" }
func (s *State) gatewayPod() string  { return s.Name + "-gateway-local-0" }

func (s *State) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return proc.WriteFileAtomic(s.Path("stack.json"), append(b, '\n'), 0o644)
}

// Load reads the state of the demo in dir.
func Load(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, "stack.json"))
	if err != nil {
		return nil, fmt.Errorf("no demo state in %s (is the demo up? `make demo`): %w", dir, err)
	}
	s := &State{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("%s/stack.json: %w", dir, err)
	}
	return s, nil
}

// DefaultDir is $QWEN_DEMO_DIR, else /tmp/qwen-demo.
func DefaultDir() string {
	if d := os.Getenv("QWEN_DEMO_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "qwen-demo")
}
