package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/qwenops/qwen-operator/internal/gateway/breaker"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
	"github.com/qwenops/qwen-operator/internal/ratelimit"
	"github.com/qwenops/qwen-operator/internal/respcache"
)

// Options configure a Gateway.
type Options struct {
	// Now is the clock used for every decision (limits, breakers, latencies). Default time.Now.
	Now func() time.Time
	// Logger receives reload and error events. Default slog.Default().
	Logger *slog.Logger
	// Timers start the gateway's wall-clock timers: the upstream idle timeout, and the renewals
	// and release retries of Redis concurrency slots. Default the real clock; tests step a
	// fake one.
	Timers clock.WithDelayedExecution
	// RedisAtNow decides Redis limits at the instants Now gives instead of on the Redis
	// server's clock. Tests use it to decide at fixed instants; gateways serving traffic must
	// not, since their clocks disagree.
	RedisAtNow bool
	// Resolve maps upstream "host:port" addresses to the "address:port" to connect to instead,
	// like curl --resolve; the URLs and Host headers are unchanged. It lets a gateway outside
	// the cluster (the local demo) reach engines whose rendered URLs are cluster DNS names.
	Resolve map[string]string
	// AccessLog configures the access log; off by default.
	AccessLog AccessLog
}

// Gateway is the data plane. It is an http.Handler; configure it with Apply or Load first.
type Gateway struct {
	now    func() time.Time
	timers clock.WithDelayedExecution
	log    *slog.Logger
	m      *metrics
	mux    *http.ServeMux
	admin  *http.ServeMux
	state  atomic.Pointer[state]
	seq    atomic.Uint64
	ready  atomic.Bool
	// handlers counts the completion requests being served; Close waits for them.
	handlers counter
	mu       sync.Mutex // serializes Apply and guards the fields below
	memory   *ratelimit.Memory
	redis    *redisBackend
	// breakers by upstream name and URL, kept across reloads.
	breakers     map[string]*breaker.Breaker
	transport    *h1Transport
	transportCfg gatewayconfig.Timeouts
	// resolve is Options.Resolve, used by every transport.
	resolve map[string]string
	// redisAtNow is Options.RedisAtNow.
	redisAtNow bool
	// access writes the access log (nil: off).
	access *accessLog
	// cacheMem is the in-memory response cache, kept across reloads; cm its metrics.
	cacheMem atomic.Pointer[respcache.Memory]
	cm       *cacheMetrics
}

// state is one applied configuration; requests read it once and use it throughout.
type state struct {
	cfg       *gatewayconfig.Config
	models    map[string]bool
	modelList []byte
	keys      *keyStore // nil: no authentication
	trust     trust
	policy    *policy // nil: no limits
	primary   *upstream
	fallback  *upstream // nil unless configured and available
	level     int
	// criticalMax and sheddableAhead turn level into each class's (levelFor).
	criticalMax, sheddableAhead int
	static                      *gatewayconfig.StaticResponse
	transport                   *h1Transport
	idleTimeout                 time.Duration
	cache                       *responseCache // nil: no response cache
}

// redisFirstConnect bounds how long applying a config waits for the first connection to a
// new Redis; past it, the failure mode applies until the connection is made.
const redisFirstConnect = 2 * time.Second

// redisRetireAfter is how long a replaced Redis client stays open at least (requests admitted
// through it still true up); it stays open longer while one of its slots is held.
const redisRetireAfter = 10 * time.Minute

type redisBackend struct {
	cfg    gatewayconfig.Redis
	lim    *redisLimiter
	cached *ratelimit.OverLimitCache // lim behind the over-limit cache: what policies use
	tmo    time.Duration
}

// New returns an unconfigured Gateway: it answers 503 until a config is applied.
func New(opts Options) *Gateway {
	g := &Gateway{
		now:        opts.Now,
		timers:     opts.Timers,
		log:        opts.Logger,
		resolve:    opts.Resolve,
		redisAtNow: opts.RedisAtNow,
		m:          newMetrics(),
		memory:     ratelimit.NewMemory(ratelimit.MemoryOptions{}),
		breakers:   map[string]*breaker.Breaker{},
		access:     newAccessLog(opts.AccessLog),
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.timers == nil {
		g.timers = clock.RealClock{}
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.cm = newCacheMetrics(g.m.reg, g.cacheMem.Load)
	g.routes()
	return g
}

// Registry is the Prometheus registry holding the gateway's metrics.
func (g *Gateway) Registry() *prometheus.Registry { return g.m.reg }

// Config returns the configuration in force, or nil before the first Apply.
func (g *Gateway) Config() *gatewayconfig.Config {
	if st := g.state.Load(); st != nil {
		return st.cfg
	}
	return nil
}

// Load parses, validates and applies a config (the content of config.yaml). On error the
// config in force keeps serving. Either way config_reloads_total counts the attempt.
func (g *Gateway) Load(data []byte) error {
	cfg, err := gatewayconfig.Load(data)
	if err != nil {
		g.m.reloads.WithLabelValues("failure").Inc()
		g.log.Error("gateway config rejected; keeping the last good one", "err", err)
		return err
	}
	return g.Apply(cfg)
}

// Apply makes a validated config the one in force. Limiter state, breaker state and upstream
// connections are kept where the new config does not change them. On error nothing changes.
func (g *Gateway) Apply(cfg *gatewayconfig.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, err := g.build(cfg)
	if err != nil {
		g.m.reloads.WithLabelValues("failure").Inc()
		g.log.Error("gateway config rejected; keeping the last good one", "err", err)
		return err
	}
	g.state.Store(st)
	g.ready.Store(true)
	g.m.reloads.WithLabelValues("success").Inc()
	g.m.level.Set(float64(st.level))
	g.log.Info("gateway config applied", "level", st.level, "models", cfg.Models, "upstream", cfg.Upstream.URL)
	return nil
}

// ReloadKeys re-reads the API keys of the config in force (the Secret volume changed).
func (g *Gateway) ReloadKeys() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.state.Load()
	if old == nil || old.cfg.Auth.KeysDir == "" {
		return nil
	}
	keys, err := loadKeys(old.cfg.Auth.KeysDir)
	if err != nil {
		g.log.Error("API keys reload failed; keeping the old keys", "err", err)
		return err
	}
	st := *old
	st.keys = keys
	g.state.Store(&st)
	g.log.Info("API keys reloaded", "keys", len(keys.ids))
	return nil
}

// SetReady sets what /readyz reports; a shutting-down gateway reports not ready.
func (g *Gateway) SetReady(ready bool) { g.ready.Store(ready && g.state.Load() != nil) }

// Close releases the Redis connections and idle upstream connections. It first waits for the
// completion requests being served to end, so that every one releases its concurrency slot
// and trues up its tokens through a client that is still open: call it once the HTTP server
// has stopped (http.Server.Shutdown, or Close, which cancels the requests it cuts off).
func (g *Gateway) Close() error {
	g.handlers.waitZero()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.transport != nil {
		g.transport.CloseIdleConnections()
	}
	if g.redis != nil {
		g.redis.lim.Close()
	}
	return nil
}

func (g *Gateway) build(cfg *gatewayconfig.Config) (*state, error) {
	st := &state{cfg: cfg, models: map[string]bool{}, level: int(cfg.Degradation.Level),
		criticalMax:    int(ptr.Deref(cfg.Degradation.CriticalMaxLevel, gatewayconfig.DefaultCriticalMaxLevel)),
		sheddableAhead: int(ptr.Deref(cfg.Degradation.SheddableStepsAhead, gatewayconfig.DefaultSheddableStepsAhead)),
		static:         cfg.Degradation.StaticResponse, idleTimeout: cfg.Timeouts.Idle.Duration}
	for _, m := range cfg.Models {
		st.models[m] = true
	}
	st.modelList = modelList(cfg.Models, g.now())
	keys, err := loadKeys(cfg.Auth.KeysDir)
	if err != nil {
		return nil, err
	}
	st.keys = keys
	st.trust.hops = int(cfg.TrustedHops)
	for _, p := range cfg.TrustedProxies {
		pr, err := gatewayconfig.ParsePrefix(p)
		if err != nil {
			return nil, err
		}
		st.trust.proxies = append(st.trust.proxies, pr)
	}
	if cfg.RateLimit != nil {
		// Compiled before the backend is touched: a limit the limiter cannot hold refuses the
		// config without replacing a working Redis client.
		p, err := newPolicy(cfg.RateLimit)
		if err != nil {
			return nil, err
		}
		if p.lim, err = g.limiterFor(cfg.RateLimit); err != nil {
			return nil, err
		}
		st.policy = p
	}
	st.cache = g.responseCache(cfg)
	settings := breaker.Settings{
		FailureThreshold: int(cfg.Breaker.FailureThreshold),
		RecoveryTimeout:  cfg.Breaker.RecoveryTimeout.Duration,
		HalfOpenRequests: int(cfg.Breaker.HalfOpenRequests),
	}
	st.primary = g.upstream(cfg.Upstream, settings)
	if cfg.FallbackUsable() {
		st.fallback = g.upstream(*cfg.Fallback, settings)
	}
	if g.transport == nil || g.transportCfg != cfg.Timeouts {
		if g.transport != nil {
			old := g.transport
			defer old.CloseIdleConnections()
		}
		g.transport, g.transportCfg = newTransport(cfg.Timeouts, g.resolve), cfg.Timeouts
	}
	st.transport = g.transport
	return st, nil
}

// counter counts things in flight; unlike a sync.WaitGroup it may be incremented while
// someone waits for zero.
type counter struct {
	mu   sync.Mutex
	n    int
	zero *sync.Cond
}

func (c *counter) add(d int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n += d; c.n == 0 && c.zero != nil {
		c.zero.Broadcast()
	}
}

func (c *counter) waitZero() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.zero == nil {
		c.zero = sync.NewCond(&c.mu)
	}
	for c.n > 0 {
		c.zero.Wait()
	}
}

// upstream returns the upstream for u, reusing its breaker when name and URL are unchanged.
func (g *Gateway) upstream(u gatewayconfig.Upstream, s breaker.Settings) *upstream {
	id := u.Name + "|" + u.URL
	b, ok := g.breakers[id]
	if ok {
		b.Configure(s)
	} else {
		gauge := g.m.circuit.WithLabelValues(u.Name)
		b = breaker.New(s, func(st breaker.State) {
			gauge.Set(float64(st))
			g.log.Warn("circuit breaker state changed", "upstream", u.Name, "state", st.String())
		})
		g.breakers[id] = b
	}
	return &upstream{name: u.Name, baseURL: u.URL, model: u.Model, breaker: b}
}

// limiterFor returns the limiter of a policy: the shared in-memory one, or a Redis limiter
// that is kept as long as its connection settings do not change.
func (g *Gateway) limiterFor(rl *gatewayconfig.RateLimit) (limiter, error) {
	if rl.Redis == nil {
		return g.memory, nil
	}
	tmo := rl.BackendTimeout.Duration
	if g.redis != nil && reflect.DeepEqual(g.redis.cfg, *rl.Redis) && g.redis.tmo == tmo {
		return g.redis.cached, nil
	}
	opt, err := redisClientOption(rl.Redis, tmo)
	if err != nil {
		return nil, fmt.Errorf("rateLimit.redis: %w", err)
	}
	if old := g.redis; old != nil {
		// Requests admitted through the old client still true up, renew and release their
		// concurrency slots through it: close it once no request can be using it, and not
		// before its last slot is released.
		time.AfterFunc(redisRetireAfter, old.lim.CloseWhenIdle)
	}
	lim := newRedisLimiter(opt, ratelimit.RedisOptions{Timeout: tmo, UseClientClock: g.redisAtNow, Clock: g.timers}, g.log)
	// A gateway that starts with Redis up decides through it from its first request.
	lim.waitFirst(redisFirstConnect)
	g.redis = &redisBackend{cfg: *rl.Redis, lim: lim, tmo: tmo,
		cached: ratelimit.NewOverLimitCache(lim, ratelimit.OverLimitCacheOptions{})}
	return g.redis.cached, nil
}
