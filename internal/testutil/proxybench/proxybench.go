// Package proxybench measures the gateway's data plane against the proxy users would
// otherwise put in front of vLLM: llm-d-inference-sim behind (a) nginx (Debian) with
// proxy_pass and limit_req and (b) the gateway with a memory Hybrid limit, plus the simulator
// called directly as the ceiling, all on this machine in the same run, with the same
// closed-loop loopback load (internal/testutil/loadgen). Neither limit ever rejects: the
// benchmark measures what each proxy costs. hack/proxybench is its command.
package proxybench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
	"github.com/qwenops/qwen-operator/internal/testutil/loadgen"
	"github.com/qwenops/qwen-operator/internal/testutil/proc"
	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// Options configure Run.
type Options struct {
	// Gateway is the gateway binary (make build).
	Gateway string
	// Dir holds the configs and logs; default a temporary directory.
	Dir string
	// Concurrency, Duration and Rounds shape the load; defaults 32, 5s, 2.
	Concurrency int
	Duration    time.Duration
	Rounds      int
	// MaxTokens of every request; default 16.
	MaxTokens int
	// Log receives each measurement as it is made.
	Log io.Writer
	// Profile, when set, is where the gateway's CPU profiles of the first round go
	// (PROFILE-plain.pprof and PROFILE-stream.pprof, read with go tool pprof bin/gateway FILE).
	Profile string
}

// Target is one way of reaching the simulator.
type Target string

// Targets, in the order each round measures them.
const (
	Direct  Target = "direct"
	Nginx   Target = "nginx"
	Gateway Target = "gateway"
)

// Measurement is one target in one mode in one round.
type Measurement struct {
	Target Target
	Stream bool
	Round  int
	loadgen.Result
	// CPU is the CPU time the proxy (nginx's master and workers, or the gateway) used during
	// the measurement; zero for Direct.
	CPU time.Duration
}

// CPUPerRequest is the proxy's CPU time per request answered.
func (m Measurement) CPUPerRequest() time.Duration {
	if m.OK == 0 {
		return 0
	}
	return m.CPU / time.Duration(m.OK)
}

// Run starts the simulator, nginx and the gateway, measures every target in both modes for
// each round, and stops everything.
func Run(ctx context.Context, o Options) ([]Measurement, error) {
	if o.Concurrency == 0 {
		o.Concurrency = 32
	}
	if o.Duration == 0 {
		o.Duration = 5 * time.Second
	}
	if o.Rounds == 0 {
		o.Rounds = 2
	}
	if o.MaxTokens == 0 {
		o.MaxTokens = 16
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "proxybench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	sim, err := simulator.StartProcess(simulator.Options{Mode: "echo"})
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	defer sim.Stop()
	nginxURL, nginxPid, stopNginx, err := startNginx(ctx, o.Dir, sim.URL)
	if err != nil {
		return nil, err
	}
	defer stopNginx()
	adminPort, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	gatewayURL, gatewayPid, stopGateway, err := startGateway(ctx, o.Gateway, o.Dir, sim.URL, sim.Model, adminPort, o.Profile != "")
	if err != nil {
		return nil, err
	}
	defer stopGateway()

	urls := map[Target]string{Direct: sim.URL, Nginx: nginxURL, Gateway: gatewayURL}
	pids := map[Target]int{Nginx: nginxPid, Gateway: gatewayPid}
	var out []Measurement
	for round := 1; round <= o.Rounds; round++ {
		for _, stream := range []bool{false, true} {
			body := requestBody(sim.Model, o.MaxTokens, stream)
			for _, t := range []Target{Direct, Nginx, Gateway} {
				var profiled chan error
				if t == Gateway && round == 1 && o.Profile != "" {
					profiled = make(chan error, 1)
					go func() { profiled <- saveProfile(ctx, adminPort, o.Duration, o.Profile, stream) }()
				}
				cpu0 := treeCPU(pids[t])
				r := loadgen.Run(ctx, loadgen.Options{URL: urls[t] + "/v1/chat/completions", Body: body,
					Concurrency: o.Concurrency, Duration: o.Duration})
				cpu := treeCPU(pids[t]) - cpu0
				if profiled != nil {
					if err := <-profiled; err != nil {
						return out, err
					}
				}
				if r.OK == 0 {
					return out, fmt.Errorf("%s (stream %v): no request succeeded (%d failed)", t, stream, r.Failed)
				}
				m := Measurement{Target: t, Stream: stream, Round: round, Result: r, CPU: cpu}
				fmt.Fprintf(o.Log, "round %d %-7s stream=%-5v %s  proxy CPU %.1f µs/request\n", round, t, stream, r, float64(m.CPUPerRequest().Nanoseconds())/1e3)
				out = append(out, m)
			}
		}
	}
	return out, nil
}

func requestBody(model string, maxTokens int, stream bool) []byte {
	s := fmt.Sprintf(`{"model":%q,"max_tokens":%d,"messages":[{"role":"user","content":"Hello! Please tell me about Qwen3 and what it can do."}]`, model, maxTokens)
	if stream {
		s += `,"stream":true,"stream_options":{"include_usage":true}`
	}
	return []byte(s + "}")
}

// startNginx runs nginx in front of upstream with keep-alive upstream connections, no
// buffering (streams pass through) and a limit_req that never rejects.
func startNginx(ctx context.Context, dir, upstream string) (string, int, func(), error) {
	bin, err := tools.Lookup("nginx")
	if err != nil {
		return "", 0, nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return "", 0, nil, err
	}
	ndir := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(ndir, 0o777); err != nil {
		return "", 0, nil, err
	}
	_ = os.Chmod(ndir, 0o777) // the workers run as nobody and write their temp files here
	conf := fmt.Sprintf(`worker_processes auto;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  limit_req_zone $binary_remote_addr zone=qwen:10m rate=1000000r/s;
  upstream sim {
    server %[2]s;
    keepalive 128;
  }
  server {
    listen 127.0.0.1:%[3]d;
    location / {
      limit_req zone=qwen burst=1000000 nodelay;
      limit_req_status 429;
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
`, ndir, strings.TrimPrefix(upstream, "http://"), port)
	path := filepath.Join(ndir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(bin, "-c", path, "-p", ndir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	return startAndWait(ctx, cmd, url+"/health", "nginx")
}

// saveProfile saves the gateway's CPU profile over most of one measurement.
func saveProfile(ctx context.Context, adminPort int, d time.Duration, prefix string, stream bool) error {
	secs := max(int(d.Seconds())-1, 1)
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", adminPort, secs)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("gateway profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("gateway profile: %s", resp.Status)
	}
	path := prefix + "-plain.pprof"
	if stream {
		path = prefix + "-stream.pprof"
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startGateway runs the gateway binary with a memory Hybrid limit that never rejects, its
// admin port on adminPort (with Go's profiles when pprof).
func startGateway(ctx context.Context, bin, dir, upstream, model string, adminPort int, pprof bool) (string, int, func(), error) {
	port, err := proc.FreePort()
	if err != nil {
		return "", 0, nil, err
	}
	cfg := &gatewayconfig.Config{
		Listen:      "127.0.0.1:" + strconv.Itoa(port),
		AdminListen: "127.0.0.1:" + strconv.Itoa(adminPort),
		Upstream:    gatewayconfig.Upstream{URL: upstream, Model: model},
		RateLimit: &gatewayconfig.RateLimit{
			Policy: "bench", Algorithm: gatewayconfig.Hybrid,
			Key:    gatewayconfig.Key{Source: gatewayconfig.KeyClientIP},
			Limits: gatewayconfig.Limits{RequestsPerMinute: 6_000_000, Burst: 1_000_000},
		},
	}
	data, err := gatewayconfig.Marshal(cfg)
	if err != nil {
		return "", 0, nil, err
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", 0, nil, err
	}
	args := []string{"--config", path, "--log-level", "warn", "--shutdown-delay", "0s"}
	if pprof {
		args = append(args, "--pprof")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	return startAndWait(ctx, cmd, url+"/readyz", "gateway")
}

// startAndWait starts cmd and waits until GET ready answers (any status below 500).
func startAndWait(ctx context.Context, cmd *exec.Cmd, ready, what string) (string, int, func(), error) {
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return "", 0, nil, fmt.Errorf("%s exited during startup", what)
		case <-ctx.Done():
			stop()
			return "", 0, nil, ctx.Err()
		default:
		}
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return strings.TrimSuffix(strings.TrimSuffix(ready, "/readyz"), "/health"), cmd.Process.Pid, stop, nil
			}
		}
		time.Sleep(50 * time.Millisecond) // polling process readiness
	}
	stop()
	return "", 0, nil, fmt.Errorf("%s not ready after 30s", what)
}

// Summary renders the measurements as a Markdown table: per target and mode, the mean over
// rounds of requests/s and of p50/p99, the ratio to nginx's requests/s, and the proxy's CPU
// time per request (all rounds' CPU over all their requests).
func Summary(ms []Measurement) string {
	type key struct {
		t      Target
		stream bool
	}
	type agg struct {
		rps, p50, p99 float64
		cpu           time.Duration
		ok            int64
	}
	sum := map[key]*agg{}
	n := map[key]int{}
	for _, m := range ms {
		k := key{m.Target, m.Stream}
		if sum[k] == nil {
			sum[k] = &agg{}
		}
		sum[k].rps += m.RPS()
		sum[k].p50 += float64(m.P50) / 1e6
		sum[k].p99 += float64(m.P99) / 1e6
		sum[k].cpu += m.CPU
		sum[k].ok += int64(m.OK)
		n[k]++
	}
	var b strings.Builder
	b.WriteString("| mode | target | requests/s | p50 ms | p99 ms | × nginx requests/s | proxy CPU µs/request |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, stream := range []bool{false, true} {
		mode := "non-streaming"
		if stream {
			mode = "streaming"
		}
		nginx := sum[key{Nginx, stream}]
		for _, t := range []Target{Direct, Nginx, Gateway} {
			a := sum[key{t, stream}]
			if a == nil {
				continue
			}
			c := float64(n[key{t, stream}])
			ratio := "—"
			if nginx != nil {
				ratio = fmt.Sprintf("%.2f", a.rps/nginx.rps)
			}
			cpu := "—"
			if t != Direct && a.ok > 0 {
				cpu = fmt.Sprintf("%.1f", float64(a.cpu.Nanoseconds())/1e3/float64(a.ok))
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %.2f | %.2f | %s | %s |\n", mode, t, a.rps/c, a.p50/c, a.p99/c, ratio, cpu)
		}
	}
	return b.String()
}

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// treeCPU is the user and system CPU time used so far by pid and its child processes
// (nginx's workers); 0 for pid 0.
func treeCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	total := processCPU(pid)
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		if ppid, ok := statField(st, 1); ok && ppid == int64(pid) {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
			total += processCPU(child)
		}
	}
	return total
}

func processCPU(pid int) time.Duration {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	u, ok1 := statField(path, 11)
	s, ok2 := statField(path, 12)
	if !ok1 || !ok2 {
		return 0
	}
	return time.Duration(u+s) * clockTick
}

// statField is field i of /proc/PID/stat counted from the state letter (0); 1 is the parent's
// pid, 11 and 12 the user and system time in clock ticks.
func statField(path string, i int) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	j := strings.LastIndexByte(string(b), ')')
	if j < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[j+1:]))
	if len(f) <= i {
		return 0, false
	}
	v, err := strconv.ParseInt(f[i], 10, 64)
	return v, err == nil
}
