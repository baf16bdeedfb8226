package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/qwenops/qwen-operator/internal/gateway"
	"github.com/qwenops/qwen-operator/internal/gateway/configwatch"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
	"github.com/qwenops/qwen-operator/internal/gcfloor"
)

// flags are the command-line options.
type flags struct {
	config          string
	configMap       string
	kubeconfig      string
	shutdownDelay   time.Duration
	shutdownTimeout time.Duration
	logLevel        slog.Level
	listen          string
	adminListen     string
	resolve         resolveFlag
	pprof           bool
	accessLog       string
	accessLogSample int
	gcHeadroomMiB   int
}

func parseFlags(args []string, out io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&f.config, "config", "", "config file (YAML, internal/gatewayconfig), reloaded on change")
	fs.StringVar(&f.configMap, "configmap", "", "NAMESPACE/NAME of a ConfigMap whose key "+gatewayconfig.ConfigMapKey+" is the config, watched through the API")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for --configmap (default: in-cluster)")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 5*time.Second, "on SIGTERM, how long to keep accepting requests while /readyz answers 503, so that the Service's endpoints drop the pod before its listener closes")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 25*time.Second, "after the shutdown delay, how long in-flight requests and streams may take to finish")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.StringVar(&f.listen, "listen", "", "address to serve on, overriding the config's listen (for a gateway run outside the cluster, e.g. 127.0.0.1:8080)")
	fs.StringVar(&f.adminListen, "admin-listen", "", "address of the admin port (/metrics), overriding the config's adminListen")
	f.resolve = resolveFlag{}
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go's profiles (/debug/pprof/) on the admin port, for finding where a gateway spends its CPU and memory")
	fs.Var(f.resolve, "resolve", "HOST:PORT=ADDR:PORT: connect to ADDR:PORT whenever an upstream URL names HOST:PORT, like curl --resolve (repeatable; for a gateway run outside the cluster, whose rendered upstream URLs are cluster DNS names)")
	fs.StringVar(&f.accessLog, "access-log", "off", "access log, one JSON line per request on the log output: off, all, or errors (status >= 400)")
	fs.IntVar(&f.accessLogSample, "access-log-sample", 1, "log one in N of the requests --access-log selects")
	fs.IntVar(&f.gcHeadroomMiB, "gc-headroom-mib", 32, "let the heap grow by at least this many MiB between garbage collections (internal/gcfloor; a small heap otherwise collects many times a second under load); 0 for Go's default; ignored when GOGC is set")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case f.accessLog != "off" && f.accessLog != "all" && f.accessLog != "errors":
		return nil, fmt.Errorf("--access-log=%s: want off, all or errors", f.accessLog)
	case f.accessLogSample < 1:
		return nil, fmt.Errorf("--access-log-sample=%d: want 1 or more", f.accessLogSample)
	case f.gcHeadroomMiB < 0 || f.gcHeadroomMiB > 4096:
		return nil, fmt.Errorf("--gc-headroom-mib=%d: want 0 to 4096", f.gcHeadroomMiB)
	}
	if (f.config == "") == (f.configMap == "") {
		return nil, errors.New("exactly one of --config and --configmap is required")
	}
	return f, nil
}

// accessLogOptions are the gateway's access log options: records at INFO on out, whatever
// --log-level says.
func (f *flags) accessLogOptions(out io.Writer) gateway.AccessLog {
	if f.accessLog == "off" {
		return gateway.AccessLog{}
	}
	return gateway.AccessLog{Logger: slog.New(slog.NewJSONHandler(out, nil)), ErrorsOnly: f.accessLog == "errors", Sample: f.accessLogSample}
}

// resolveFlag collects --resolve HOST:PORT=ADDR:PORT mappings.
type resolveFlag map[string]string

func (r resolveFlag) String() string {
	pairs := make([]string, 0, len(r))
	for from, to := range r {
		pairs = append(pairs, from+"="+to)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

func (r resolveFlag) Set(v string) error {
	from, to, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("%q: want HOST:PORT=ADDR:PORT", v)
	}
	for _, hp := range []string{from, to} {
		if h, p, err := net.SplitHostPort(hp); err != nil || h == "" || p == "" {
			return fmt.Errorf("%q: %q is not HOST:PORT", v, hp)
		}
	}
	r[from] = to
	return nil
}

// hooks let tests observe the process; every field may be nil.
type hooks struct {
	// ready receives the listening address once the first config is in force.
	ready chan<- string
	// admin receives the admin port's address at the same time.
	admin chan<- string
	// reloaded receives the result of every config delivered after the first.
	reloaded chan<- error
	// after starts the shutdown delay; default time.After.
	after func(time.Duration) <-chan time.Time
}

// run serves until ctx is done, then shuts down gracefully. The first config must be valid;
// later invalid ones are rejected and the last good one keeps serving.
func run(ctx context.Context, args []string, logOut io.Writer, h hooks) error {
	f, err := parseFlags(args, logOut)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: f.logLevel}))
	defer gcfloor.Start(uint64(f.gcHeadroomMiB)<<20, nil)()
	g := gateway.New(gateway.Options{Logger: log, Resolve: f.resolve, AccessLog: f.accessLogOptions(logOut)})
	defer g.Close() // after serve: once every request has released what it holds

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := make(chan error, 1)
	var mu sync.Mutex
	delivered, listen := false, ""
	keys := newKeyWatcher(ctx, g, log)
	onConfig := func(data []byte) {
		err := g.Load(data)
		if err == nil {
			keys.follow(g.Config().Auth.KeysDir)
		}
		mu.Lock()
		defer mu.Unlock()
		if !delivered {
			delivered = true
			if err == nil {
				listen = g.Config().Listen
				if f.listen != "" {
					listen = f.listen
				}
			}
			first <- err
			return
		}
		if err == nil && f.listen == "" && g.Config().Listen != listen {
			log.Warn("a new listen address takes effect only after a restart", "serving", listen, "configured", g.Config().Listen)
		}
		if h.reloaded != nil {
			h.reloaded <- err
		}
	}
	watchErr := make(chan error, 1)
	go func() { watchErr <- watch(ctx, f, log, onConfig) }()

	select {
	case err := <-first:
		if err != nil {
			return fmt.Errorf("initial config: %w", err)
		}
	case err := <-watchErr:
		if err == nil {
			err = errors.New("config source closed before a config arrived")
		}
		return err
	case <-ctx.Done():
		return nil
	}

	mu.Lock()
	addr, adminAddr := listen, g.Config().AdminListen
	mu.Unlock()
	if f.adminListen != "" {
		adminAddr = f.adminListen
	}
	return serve(ctx, g, f, log, h, addr, adminAddr)
}

// adminHandler is the gateway's admin handler, with Go's profiles under /debug/pprof/ when
// asked for. Like /metrics they are never routed by the Ingress or HTTPRoute.
func adminHandler(g *gateway.Gateway, withPprof bool) http.Handler {
	if !withPprof {
		return g.Admin()
	}
	mux := http.NewServeMux()
	mux.Handle("/", g.Admin())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// maxHeaderBytes bounds a request's header block; a larger one gets 431.
const maxHeaderBytes = 64 << 10

// serve runs the API and admin servers until ctx is done, then shuts down in order: /readyz
// answers 503 while requests are still accepted for the shutdown delay (so endpoints drop the
// pod first), then the listeners close and in-flight requests and streams drain for up to the
// shutdown timeout; those still running then are cut off. The gateway (its Redis client) is
// closed last, by run, once every request has released what it holds.
func serve(ctx context.Context, g *gateway.Gateway, f *flags, log *slog.Logger, h hooks, addr, adminAddr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	aln, err := net.Listen("tcp", adminAddr)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: maxHeaderBytes}
	admin := &http.Server{Handler: adminHandler(g, f.pprof), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: maxHeaderBytes}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	go func() { serveErr <- admin.Serve(aln) }()
	log.Info("gateway serving", "addr", ln.Addr().String(), "admin", aln.Addr().String())
	if h.ready != nil {
		h.ready <- ln.Addr().String()
	}
	if h.admin != nil {
		h.admin <- aln.Addr().String()
	}

	select {
	case err := <-serveErr:
		srv.Close()
		admin.Close()
		return err
	case <-ctx.Done():
	}
	g.SetReady(false)
	log.Info("shutting down: not ready, still serving", "delay", f.shutdownDelay)
	after := h.after
	if after == nil {
		after = time.After
	}
	<-after(f.shutdownDelay)
	log.Info("shutting down: draining in-flight requests", "timeout", f.shutdownTimeout)
	sctx, scancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer scancel()
	err = srv.Shutdown(sctx)
	if err != nil {
		srv.Close() // cancels the requests still running; g.Close waits for them to release
		err = fmt.Errorf("shutdown: %w", err)
	}
	admin.Close()
	log.Info("gateway stopped")
	return err
}

// watch delivers configs from the file or the ConfigMap until ctx is done.
func watch(ctx context.Context, f *flags, log *slog.Logger, onConfig func([]byte)) error {
	if f.config != "" {
		return configwatch.File(ctx, f.config, log, onConfig)
	}
	ns, name, err := configwatch.ParseRef(f.configMap)
	if err != nil {
		return err
	}
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return configwatch.ConfigMap(ctx, cs, ns, name, gatewayconfig.ConfigMapKey, log, onConfig)
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}

// keyWatcher re-reads the API keys when the keys directory of the config in force changes.
type keyWatcher struct {
	ctx    context.Context
	g      *gateway.Gateway
	log    *slog.Logger
	mu     sync.Mutex
	dir    string
	cancel context.CancelFunc
}

func newKeyWatcher(ctx context.Context, g *gateway.Gateway, log *slog.Logger) *keyWatcher {
	return &keyWatcher{ctx: ctx, g: g, log: log}
}

// follow watches dir (and stops watching the previous one) when it changed.
func (k *keyWatcher) follow(dir string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if dir == k.dir {
		return
	}
	if k.cancel != nil {
		k.cancel()
	}
	k.dir, k.cancel = dir, nil
	if dir == "" {
		return
	}
	ctx, cancel := context.WithCancel(k.ctx)
	k.cancel = cancel
	go func() {
		err := configwatch.Dir(ctx, dir, k.log, func() { k.g.ReloadKeys() })
		if err != nil {
			k.log.Error("cannot watch the API keys directory; keys reload with the config only", "dir", dir, "err", err)
		}
	}()
}
