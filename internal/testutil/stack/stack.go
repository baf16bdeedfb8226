package stack

import (
	"github.com/qwenops/qwen-operator/internal/testutil/proc"

	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// Options configure Up.
type Options struct {
	// Dir is the state directory; default DefaultDir(). It must not exist, be empty, or hold
	// a stopped demo (which Up replaces).
	Dir string
	// Bin holds the manager, gateway and qwen-demo binaries (see Build); default <repo>/bin.
	Bin string
	// DefaultPorts prefers the well-known ports (gateway 8080, Prometheus 9090, …), each
	// replaced by a free port when taken; false picks free ports for everything (tests).
	DefaultPorts bool
	// Log receives progress lines; default io.Discard.
	Log io.Writer
}

// Stack is a running demo.
type Stack struct {
	*State
	log io.Writer
}

// Build compiles bin/manager, bin/gateway and bin/qwen-demo into bin with the Go toolchain.
func Build(ctx context.Context, root, bin string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin+string(filepath.Separator),
		"./cmd/manager", "./cmd/gateway", "./hack/demo/qwen-demo")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// Up starts the demo and returns once the QwenService is Ready, its policy and plan are
// accepted, the plan reads the GPU temperature from Prometheus and the gateway serves the
// model. On error it stops whatever it started; the logs stay in the state directory.
func Up(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	root, err := tools.RepoRoot()
	if err != nil {
		return nil, err
	}
	st := &State{Dir: opts.Dir, Root: root, Bin: opts.Bin, Namespace: "ai", Name: "qwen3", Model: "Qwen3-1.7B", FallbackModel: "Qwen3-0.6B"}
	if st.Dir == "" {
		st.Dir = DefaultDir()
	}
	if st.Dir, err = filepath.Abs(st.Dir); err != nil {
		return nil, err
	}
	if st.Bin == "" {
		st.Bin = filepath.Join(root, "bin")
	}
	for _, b := range []string{"manager", "gateway", "qwen-demo"} {
		if _, err := os.Stat(filepath.Join(st.Bin, b)); err != nil {
			return nil, fmt.Errorf("%s/%s is missing: build it with `go build -o bin/ ./cmd/manager ./cmd/gateway ./hack/demo/qwen-demo` (make demo does): %w", st.Bin, b, err)
		}
	}
	if st.Tools, err = lookupTools(); err != nil {
		return nil, err
	}
	if err := prepareDir(st.Dir); err != nil {
		return nil, err
	}
	if st.Ports, err = pickPorts(opts.DefaultPorts); err != nil {
		return nil, err
	}
	for _, d := range []string{"logs", "pids", "redis", "prometheus", "manifests"} {
		if err := os.MkdirAll(st.Path(d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := st.save(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(st.Path("prometheus", "prometheus.yml"), []byte(st.prometheusConfig()), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(st.Path("env"), []byte(st.envFile()), 0o644); err != nil {
		return nil, err
	}

	s := &Stack{State: st, log: opts.Log}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, s.logTails())
			if derr := s.Down(); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	begin := time.Now()
	// Everything that does not need the API server starts with it.
	if err := s.startAll(ctx, ControlPlane, Redis, Engine, Fallback, Agent, Prometheus); err != nil {
		return nil, err
	}
	s.logf("control plane, Redis, simulators, GPU exporter and Prometheus up (%s)", time.Since(begin).Round(time.Millisecond))
	// kubectl without -n works in the demo namespace.
	if _, err := s.Kubectl(ctx, "config", "set-context", "--current", "--namespace", st.Namespace); err != nil {
		return nil, err
	}
	if err := s.startAll(ctx, Manager); err != nil {
		return nil, err
	}
	if err := s.applyManifests(ctx); err != nil {
		return nil, err
	}
	if err := s.startAll(ctx, Gateway); err != nil {
		return nil, err
	}
	if err := s.WaitConverged(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	s.logf("demo up in %s", time.Since(begin).Round(time.Millisecond))
	return s, nil
}

// Attach returns the demo in dir, started by another process, for Kill, Start and Down.
func Attach(dir string) (*Stack, error) {
	st, err := Load(dir)
	if err != nil {
		return nil, err
	}
	return &Stack{State: st, log: io.Discard}, nil
}

func lookupTools() (Tools, error) {
	var t Tools
	var errs []error
	for _, n := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := tools.Lookup(n); err != nil {
			errs = append(errs, err)
		}
	}
	t.Assets = tools.EnvtestAssets()
	for _, x := range []struct {
		name string
		dst  *string
	}{{"llm-d-inference-sim", &t.Simulator}, {"redis-server", &t.Redis}, {"prometheus", &t.Prometheus}} {
		p, err := tools.Lookup(x.name)
		if err != nil {
			errs = append(errs, err)
		}
		*x.dst = p
	}
	return t, errors.Join(errs...)
}

// prepareDir makes dir ready for a new demo: it may not exist, be empty, or hold a demo whose
// processes all stopped (its files are removed). Anything else is refused, so that a
// mistyped QWEN_DEMO_DIR never loses files.
func prepareDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0 {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "stack.json")); err != nil {
		return fmt.Errorf("%s is not empty and holds no demo; choose another QWEN_DEMO_DIR", dir)
	}
	if running := runningPids(dir); len(running) > 0 {
		return fmt.Errorf("a demo is already running in %s (%s); stop it with `make demo-down`", dir, strings.Join(running, ", "))
	}
	return os.RemoveAll(dir)
}

// runningPids lists the recorded processes in dir that still run, as "name pid".
func runningPids(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "pids", "*.pid"))
	var out []string
	for _, f := range files {
		if p, err := proc.ReadPid(f); err == nil && p.Alive() {
			out = append(out, fmt.Sprintf("%s %d", strings.TrimSuffix(filepath.Base(f), ".pid"), p.Pid))
		}
	}
	return out
}

// startAll starts the named components and waits until each is ready.
func (s *Stack) startAll(ctx context.Context, names ...string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Start(ctx, n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Start starts one component (again, e.g. after Kill) and waits until it is ready.
func (s *Stack) Start(ctx context.Context, name string) error {
	c, err := s.component(name)
	if err != nil {
		return err
	}
	pidPath := s.Path("pids", name+".pid")
	if p, err := proc.ReadPid(pidPath); err == nil && p.Alive() {
		return fmt.Errorf("%s is already running (pid %d)", name, p.Pid)
	}
	d, err := proc.Spawn(c.argv, c.env, s.Dir, s.Path("logs", name+".log"), pidPath)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := d.WaitReady(rctx, name, c.ready); err != nil {
		return err
	}
	s.logf("%-12s pid %-7d ready (log %s)", name, d.Pid, s.Path("logs", name+".log"))
	return nil
}

// Kill kills one component with SIGKILL, as a crash would; Start brings it back.
func (s *Stack) Kill(name string) error {
	if _, err := s.component(name); err != nil {
		return err
	}
	return proc.KillPid(s.Path("pids", name+".pid"))
}

// Pid returns the pid of a running component.
func (s *Stack) Pid(name string) (int, error) {
	p, err := proc.ReadPid(s.Path("pids", name+".pid"))
	if err != nil {
		return 0, err
	}
	if !p.Alive() {
		return 0, fmt.Errorf("%s (pid %d) is not running", name, p.Pid)
	}
	return p.Pid, nil
}

// Down stops every process the demo recorded, in reverse start order, and nothing else.
func (s *Stack) Down() error { return Down(s.Dir) }

// Down stops the demo in dir: each recorded process that still runs (and is still the
// process that was recorded) gets SIGTERM, then SIGKILL after a grace period. The state
// directory with the logs is kept; the next Up replaces it.
func Down(dir string) error {
	var errs []error
	order := append([]string{}, Components...)
	for i := len(order) - 1; i >= 0; i-- {
		grace := 10 * time.Second
		if order[i] == ControlPlane {
			grace = 45 * time.Second
		}
		if err := proc.StopPid(filepath.Join(dir, "pids", order[i]+".pid"), grace); err != nil {
			errs = append(errs, err)
		}
		if order[i] == ControlPlane {
			// Left over only when the control plane component died without stopping them.
			for _, c := range controlPlaneChildren {
				if err := proc.StopPid(filepath.Join(dir, "pids", c+".pid"), 10*time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Stack) logf(format string, args ...any) {
	fmt.Fprintf(s.log, format+"\n", args...)
}

// logTails returns the last lines of every component's log, for error messages.
func (s *Stack) logTails() string {
	var b strings.Builder
	for _, n := range Components {
		data, err := os.ReadFile(s.Path("logs", n+".log"))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(&b, "--- %s (%s), last lines:\n%s\n", n, s.Path("logs", n+".log"), strings.Join(lines, "\n"))
	}
	return b.String()
}

// LogTails returns the last lines of every component's log.
func (s *Stack) LogTails() string { return s.logTails() }

// envFile is the shell environment of the demo (`source $dir/env`).
func (s *State) envFile() string {
	return fmt.Sprintf(`# source this file: the qwen-operator demo's environment (written by qwen-demo up).
export QWEN_DEMO_DIR=%[1]q
export KUBECONFIG=%[2]q
export PATH=%[3]q:"$PATH"          # kubectl (built with the envtest binaries)
export QWEN_URL=%[4]q              # the gateway's OpenAI base URL
export QWEN_ENGINE=%[5]q           # the engine simulator (POST /admin/config injects failures)
export QWEN_FALLBACK=%[6]q
export QWEN_GPU=%[7]q              # the simulated GPU (POST /gpu?temperature=92)
export PROMETHEUS_URL=%[8]q
`, s.Dir, s.Kubeconfig(), s.Tools.Assets, s.GatewayURL(), s.EngineURL(), s.FallbackURL(), s.AgentURL(), s.PrometheusURL())
}
