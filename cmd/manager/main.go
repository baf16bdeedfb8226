// Command manager runs the qwen-operator controllers; `manager probe` checks every
// QwenService's gateway (the Helm chart's `helm test`).
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/qwenops/qwen-operator/controllers"
	"github.com/qwenops/qwen-operator/internal/buildinfo"
	"github.com/qwenops/qwen-operator/internal/render"
)

// Defaults of the flags that size the manager for its fleet (docs/sizing.md, "Operator").
const (
	// DefaultKubeAPIQPS is --kube-api-qps: more than twice what the manager sent an API server
	// on 2 cores while 1 000 QwenServices were created (about 210 requests/s), so the limit
	// guards against a runaway without slowing a large rollout.
	DefaultKubeAPIQPS = 500
	// DefaultKubeAPIBurst is --kube-api-burst.
	DefaultKubeAPIBurst = 1000
	// DefaultQwenServiceWorkers is --qwenservice-workers: a reconcile waits on the API server
	// for most of its time, so 16 took 1 000 new QwenServices' children 0.56–0.59× the time 4 did.
	DefaultQwenServiceWorkers = 16
)

// options are the manager's flags.
type options struct {
	metricsAddr, probeAddr  string
	pprofAddr               string
	secureMetrics           bool
	enableHTTP2             bool
	leaderElect             bool
	leaderElectionID        string
	leaderElectionNamespace string
	kubeconfig              string
	// kubeAPIQPS and kubeAPIBurst bound the manager's requests to the API server.
	kubeAPIQPS   float64
	kubeAPIBurst int
	// qwenServiceWorkers is the number of QwenServices reconciled at once.
	qwenServiceWorkers int
	defaults           Defaults
}

// Defaults are the images and URLs a QwenService gets when its spec leaves them empty.
type Defaults struct {
	// Defaults are the images, handed to the renderer as they are.
	render.Defaults
	PrometheusURL string
	// AllowedPrometheusURLs restricts the Prometheus URLs DegradationPlans and
	// RateLimitPolicies may name (scheme and host); empty allows any.
	AllowedPrometheusURLs []string
	// AdaptiveInterval is how often RateLimitPolicies with adaptive rules re-read telemetry.
	AdaptiveInterval time.Duration
}

func parseFlags(fs *flag.FlagSet, args []string) (options, zap.Options, error) {
	var o options
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "address of the metrics endpoint (HTTPS with authn/authz when --metrics-secure); 0 disables it")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "address of Go's /debug/pprof/ profiles (plain HTTP, no authentication: bind it to 127.0.0.1 and port-forward); 0 disables it")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true, "serve metrics over HTTPS, authenticated and authorized through the API server")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false, "allow HTTP/2 on the metrics server (off by default: CVE-2023-44487, CVE-2023-39325)")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader so only one replica reconciles")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", "qwen-operator.qwenops.io", "name of the leader election Lease")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease; default: the pod's namespace")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path of a kubeconfig; default: in-cluster, then $KUBECONFIG, then ~/.kube/config")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", DefaultKubeAPIQPS, "requests per second the manager may send the API server on average (client-side limit; the API server's priority and fairness applies too); a negative value removes the limit")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", DefaultKubeAPIBurst, "requests the manager may send the API server in a burst above --kube-api-qps")
	fs.IntVar(&o.qwenServiceWorkers, "qwenservice-workers", DefaultQwenServiceWorkers, "QwenServices reconciled at once")
	fs.StringVar(&o.defaults.VLLMImage, "vllm-image", "vllm/vllm-openai:v0.11.0", "default engine image for engine.type VLLM")
	fs.StringVar(&o.defaults.SGLangImage, "sglang-image", "lmsysorg/sglang:v0.5.4", "default engine image for engine.type SGLang")
	fs.StringVar(&o.defaults.SimulatorImage, "simulator-image", "ghcr.io/llm-d/llm-d-inference-sim:v0.10.2", "default engine image for engine.type Simulator")
	fs.StringVar(&o.defaults.GatewayImage, "gateway-image", buildinfo.GatewayImage(), "default gateway image (the one this release publishes)")
	fs.StringVar(&o.defaults.PrometheusURL, "prometheus-url", "http://prometheus-operated.monitoring.svc:9090", "default Prometheus URL for DegradationPlans and adaptive rules")
	fs.Func("allowed-prometheus-urls", "comma-separated Prometheus URLs (scheme://host:port) a DegradationPlan's or RateLimitPolicy's spec.prometheus.url may name; empty: any. The operator queries them from inside the cluster, so whoever may create a plan or policy can make it query any URL allowed here; --prometheus-url is always allowed", func(v string) error {
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				pu, err := url.Parse(u)
				if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
					return fmt.Errorf("%q: want an absolute http(s) URL", u)
				}
				o.defaults.AllowedPrometheusURLs = append(o.defaults.AllowedPrometheusURLs, u)
			}
		}
		return nil
	})
	fs.DurationVar(&o.defaults.AdaptiveInterval, "adaptive-interval", 15*time.Second, "how often RateLimitPolicies with adaptive rules re-read telemetry")
	zo := zap.Options{}
	zo.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return o, zo, err
	}
	switch {
	case o.kubeAPIQPS == 0:
		return o, zo, fmt.Errorf("--kube-api-qps 0 would fall back to client-go's 5/s; give a rate, or a negative value for no limit")
	case o.kubeAPIQPS > 0 && o.kubeAPIBurst < 1:
		return o, zo, fmt.Errorf("--kube-api-burst %d: want at least 1", o.kubeAPIBurst)
	case o.qwenServiceWorkers < 1:
		return o, zo, fmt.Errorf("--qwenservice-workers %d: want at least 1", o.qwenServiceWorkers)
	}
	return o, zo, nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" { // `helm test`
		if err := probeMain(ctrl.SetupSignalHandler(), os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctrl.SetupSignalHandler(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run starts the manager and blocks until ctx is done.
func run(ctx context.Context, args []string) error {
	o, zo, err := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zo)))
	log := ctrl.Log.WithName("setup")

	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return fmt.Errorf("finding the API server: %w", err)
	}
	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.secureMetrics, TLSOpts: tlsOpts}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	cfg.QPS, cfg.Burst = float32(o.kubeAPIQPS), o.kubeAPIBurst
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  render.NewScheme(),
		Cache:                   controllers.CacheOptions(),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        o.leaderElectionID,
		LeaderElectionNamespace: o.leaderElectionNamespace,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := setupControllers(mgr, o.defaults, o.qwenServiceWorkers); err != nil {
		return fmt.Errorf("setting up controllers: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting manager", "leaderElection", o.leaderElect, "metrics", o.metricsAddr, "probes", o.probeAddr)
	return mgr.Start(ctx)
}

// restConfig reaches the API server through the kubeconfig file when one is named, else
// in-cluster, $KUBECONFIG or ~/.kube/config.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return ctrl.GetConfig()
}
