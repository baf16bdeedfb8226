package gatewayconfig

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigMapKey is the key of the gateway ConfigMap that holds the rendered Config.
const ConfigMapKey = "config.yaml"

// Config is the whole gateway configuration.
type Config struct {
	// Listen is the address the gateway serves the OpenAI API and its health on. Default ":8080".
	Listen string `json:"listen,omitempty"`
	// AdminListen is the address of the admin port, which serves /metrics (and the health
	// endpoints) and nothing else. No Ingress or HTTPRoute routes it. Default ":9090".
	AdminListen string `json:"adminListen,omitempty"`
	// Models are the model names clients may send in `model`. Default: [upstream.model].
	Models []string `json:"models,omitempty"`
	// Upstream is the primary inference engine.
	Upstream Upstream `json:"upstream"`
	// Fallback is the optional smaller engine used by degradation level 3 and while the
	// primary's circuit breaker is open.
	Fallback *Upstream `json:"fallback,omitempty"`
	// Auth configures API-key authentication; empty means no authentication.
	Auth Auth `json:"auth,omitzero"`
	// MaxRequestBodyBytes bounds the request body; larger bodies get 413. Default 1 MiB.
	MaxRequestBodyBytes int64 `json:"maxRequestBodyBytes,omitempty"`
	// TrustedProxies are the CIDRs (or single IPs) of the proxies in front of the gateway.
	// Without TrustedHops, the client is the right-most X-Forwarded-For entry that is not a
	// trusted proxy, when the connection comes from one. With TrustedHops, X-Forwarded-For is
	// believed only when the connection comes from a trusted proxy.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// TrustedHops is the number of proxies in front of the gateway that each append the
	// address they were called from to X-Forwarded-For (ingress-nginx, Envoy): the client is
	// the TrustedHops-th entry from the right, like Envoy's xff_num_trusted_hops. A request with
	// fewer entries did not come through them and is keyed by its connection's address. 0 (the
	// default) ignores X-Forwarded-For unless TrustedProxies is set.
	TrustedHops int32 `json:"trustedHops,omitempty"`
	// Timeouts bound the calls to the upstreams.
	Timeouts Timeouts `json:"timeouts,omitzero"`
	// RateLimit is the per-client limiting policy; nil means no limits.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// Degradation is the current degradation level and what it needs.
	Degradation Degradation `json:"degradation,omitzero"`
	// Breaker configures the per-upstream circuit breakers.
	Breaker Breaker `json:"breaker,omitzero"`
}

// StaticUpstream is the upstream name of an answer the gateway made itself (the static
// reply) in X-Qwen-Upstream and the upstream label of qwen_gateway_requests_total; no
// upstream may take it.
const StaticUpstream = "static"

// CacheUpstream is the upstream name of a reply from the response cache, like StaticUpstream.
const CacheUpstream = "cache"

// Upstream is an OpenAI-compatible inference engine.
type Upstream struct {
	// Name labels the upstream in metrics and logs. Default "primary" or "fallback";
	// "static" and "cache" are reserved.
	Name string `json:"name,omitempty"`
	// URL is the engine's base URL without the /v1 suffix, e.g. http://qwen3-engine.ai.svc:8000.
	URL string `json:"url"`
	// Model is the model name the engine serves (sent upstream in `model`).
	Model string `json:"model"`
}

// Auth configures bearer API keys.
type Auth struct {
	// KeysDir is where the API-keys Secret is mounted: one file per key id, the file content
	// is the key. Empty means no authentication.
	KeysDir string `json:"keysDir,omitempty"`
}

// Timeouts bound the gateway's calls to an upstream.
type Timeouts struct {
	// Connect bounds the TCP connect. Default 5s.
	Connect metav1.Duration `json:"connect,omitzero"`
	// ResponseHeader bounds the wait for the response headers (for a non-streaming call,
	// the whole generation). Default 300s.
	ResponseHeader metav1.Duration `json:"responseHeader,omitzero"`
	// Idle bounds how long one read of an upstream response body may wait (the gap between
	// stream chunks). It measures the engine only: time spent writing to a slow client does
	// not count. Default 60s.
	Idle metav1.Duration `json:"idle,omitzero"`
	// RequestBody bounds reading a client's request body; a slower client gets 408.
	// Default 30s.
	RequestBody metav1.Duration `json:"requestBody,omitzero"`
	// ClientWrite bounds one write to a client: a client that stops reading is cut off after
	// it, its request ends and its concurrency slot is released; the upstream's breaker is not
	// told. Default 30s.
	ClientWrite metav1.Duration `json:"clientWrite,omitzero"`
}

// Mode says whether a rate-limit policy rejects requests.
type Mode string

// Modes.
const (
	// ModeEnforce rejects requests over the limits with 429.
	ModeEnforce Mode = "Enforce"
	// ModeShadow counts requests over the limits but never rejects.
	ModeShadow Mode = "Shadow"
)

// KeySource says what identifies a client for limiting.
type KeySource string

// Key sources.
const (
	// KeyAPIKey uses the API key id (the client IP when auth is off).
	KeyAPIKey KeySource = "APIKey"
	// KeyClientIP uses the client IP (X-Forwarded-For only from trusted proxies).
	KeyClientIP KeySource = "ClientIP"
	// KeyHeader uses the value of a request header (the client IP when absent).
	KeyHeader KeySource = "Header"
)

// Algorithm is a limiting algorithm; the names match internal/ratelimit.
type Algorithm string

// Algorithms.
const (
	TokenBucket   Algorithm = "TokenBucket"
	SlidingWindow Algorithm = "SlidingWindow"
	// SlidingLog is the exact log of the last 60 s; RequestsPerMinute at most 10000.
	SlidingLog  Algorithm = "SlidingLog"
	FixedWindow Algorithm = "FixedWindow"
	LeakyBucket Algorithm = "LeakyBucket"
	// Hybrid admits only when both a sliding window and a token bucket admit.
	Hybrid Algorithm = "Hybrid"
)

// FailureMode says what happens to a request when the limiter backend cannot decide.
type FailureMode string

// Failure modes.
const (
	// FailOpen admits the request.
	FailOpen FailureMode = "FailOpen"
	// FailClosed rejects the request with 429.
	FailClosed FailureMode = "FailClosed"
)

// RateLimit is the effective rate-limit policy for this gateway.
type RateLimit struct {
	// Policy is the RateLimitPolicy's name; it names the policy in RateLimit headers.
	Policy string `json:"policy"`
	// Mode is Enforce (default) or Shadow.
	Mode Mode `json:"mode,omitempty"`
	// Key says what identifies a client. Default ClientIP.
	Key Key `json:"key,omitzero"`
	// Algorithm limits requests per minute. Default Hybrid.
	Algorithm Algorithm `json:"algorithm,omitempty"`
	// AssumedMaxTokens is the max_tokens charged up front, per choice, for a request that sets
	// neither max_tokens nor max_completion_tokens; the response's usage trues it up.
	// Default 4096.
	AssumedMaxTokens int64 `json:"assumedMaxTokens,omitempty"`
	// Queue, for LeakyBucket only, holds requests until their turn instead of refusing them;
	// nil refuses at once.
	Queue *Queue `json:"queue,omitempty"`
	// Criticality is the class of the requests of keys outside the overrides: Critical,
	// Standard (default) or Sheddable.
	Criticality Criticality `json:"criticality,omitempty"`
	// CriticalityHeader names a request header that sets a request's class; it is honoured
	// only on connections from TrustedProxies. Empty: none.
	CriticalityHeader string `json:"criticalityHeader,omitempty"`
	// Limits are the base limits; a zero field means no limit.
	Limits Limits `json:"limits,omitzero"`
	// Overrides give named keys other limits; the first override listing a key wins.
	Overrides []Override `json:"overrides,omitempty"`
	// FailureMode applies when the backend errs or times out. Default FailOpen.
	FailureMode FailureMode `json:"failureMode,omitempty"`
	// BackendTimeout bounds the limiter decisions of one request. Default 50ms.
	BackendTimeout metav1.Duration `json:"backendTimeout,omitzero"`
	// Redis holds the shared limiter state; nil means local per-replica limiting.
	Redis *Redis `json:"redis,omitempty"`
	// Replicas is the number of gateway replicas; local limiting divides every limit by it.
	// Default 1.
	Replicas int32 `json:"replicas,omitempty"`
	// ActiveSchedule is the schedule the limits came from (informational).
	ActiveSchedule string `json:"activeSchedule,omitempty"`
}

// Queue holds LeakyBucket requests until their turn (see the RateLimitPolicy's QueueSpec).
type Queue struct {
	// MaxWait is the longest a request may wait for its turn; a longer wait gets 429. (0, 10m].
	MaxWait metav1.Duration `json:"maxWait"`
	// MaxQueued bounds the requests waiting on this replica, over every client. Default 100.
	MaxQueued int64 `json:"maxQueued,omitempty"`
}

// Key identifies a client for limiting.
type Key struct {
	// Source is APIKey, ClientIP (default) or Header.
	Source KeySource `json:"source,omitempty"`
	// Header is the header name when Source is Header.
	Header string `json:"header,omitempty"`
	// IPv6PrefixLength is how many leading bits of an IPv6 client address make its key: a
	// host usually holds a whole /64, so keying per address would give it 2^64 buckets.
	// Default 64; 128 keys per address.
	IPv6PrefixLength int32 `json:"ipv6PrefixLength,omitempty"`
}

// Limits are per-client limits; zero means unlimited.
type Limits struct {
	// RequestsPerMinute limits requests with Algorithm.
	RequestsPerMinute int64 `json:"requestsPerMinute,omitempty"`
	// Burst is the token-bucket capacity (TokenBucket, Hybrid) or leaky-bucket queue
	// (LeakyBucket). Zero means RequestsPerMinute.
	Burst int64 `json:"burst,omitempty"`
	// TokensPerMinute limits prompt + completion tokens.
	TokensPerMinute int64 `json:"tokensPerMinute,omitempty"`
	// InputTokensPerMinute limits prompt tokens.
	InputTokensPerMinute int64 `json:"inputTokensPerMinute,omitempty"`
	// OutputTokensPerMinute limits completion tokens.
	OutputTokensPerMinute int64 `json:"outputTokensPerMinute,omitempty"`
	// MaxConcurrentRequests limits requests in flight.
	MaxConcurrentRequests int64 `json:"maxConcurrentRequests,omitempty"`
	// RequestsPerHour and RequestsPerDay are request budgets over 3600 s and 86400 s
	// (sliding-window counters).
	RequestsPerHour int64 `json:"requestsPerHour,omitempty"`
	RequestsPerDay  int64 `json:"requestsPerDay,omitempty"`
	// TokensPerHour and TokensPerDay are prompt + completion token budgets over 3600 s and
	// 86400 s, charged and trued up like TokensPerMinute.
	TokensPerHour int64 `json:"tokensPerHour,omitempty"`
	TokensPerDay  int64 `json:"tokensPerDay,omitempty"`
}

// Override is a tier of limits for named keys.
type Override struct {
	// Name names the tier.
	Name string `json:"name"`
	// Keys are API key ids (APIKey), IPs or CIDRs (ClientIP) or header values (Header).
	Keys []string `json:"keys"`
	// Limits are the tier's complete limits, as the RateLimitPolicy's status resolves them
	// (the operator merges a tier over the base limits); a zero field means no limit.
	Limits Limits `json:"limits,omitzero"`
	// Criticality is the class of the tier's requests; empty: the policy's.
	Criticality Criticality `json:"criticality,omitempty"`
}

// Criticality is a request class.
type Criticality string

// Request classes, most critical first.
const (
	// Critical requests are degraded at most to Degradation.CriticalMaxLevel.
	Critical Criticality = "Critical"
	// Standard requests get the degradation level.
	Standard Criticality = "Standard"
	// Sheddable requests are degraded Degradation.SheddableStepsAhead levels ahead.
	Sheddable Criticality = "Sheddable"
)

// Redis is the shared limiter backend: exactly one of a standalone server (Address), a
// master found through Redis Sentinel (Sentinel) or a Redis Cluster (Cluster).
type Redis struct {
	// Address is host:port of a standalone Redis.
	Address string `json:"address,omitempty"`
	// Sentinel finds the master through Redis Sentinel and follows its failovers.
	Sentinel *RedisSentinel `json:"sentinel,omitempty"`
	// Cluster connects to a Redis Cluster.
	Cluster *RedisCluster `json:"cluster,omitempty"`
	// PasswordEnv names the environment variable holding the password of the Redis servers
	// (empty value: none). Default QWEN_REDIS_PASSWORD.
	PasswordEnv string `json:"passwordEnv,omitempty"`
	// TLS turns on TLS to Redis (and to the sentinels).
	TLS bool `json:"tls,omitempty"`
	// CAFile is a PEM file of the certificate authorities that sign the servers'
	// certificates, for TLS; empty means the system's.
	CAFile string `json:"caFile,omitempty"`
}

// RedisSentinel names a master monitored by Redis Sentinel.
type RedisSentinel struct {
	// MasterName is the name the sentinels monitor the master under.
	MasterName string `json:"masterName"`
	// Addresses are host:port of sentinels; the client asks them for the master and
	// learns the others from them.
	Addresses []string `json:"addresses"`
	// PasswordEnv names the environment variable holding the sentinels' own password
	// (requirepass of the sentinels); empty: the sentinels need none.
	PasswordEnv string `json:"passwordEnv,omitempty"`
}

// RedisCluster is a Redis Cluster.
type RedisCluster struct {
	// Addresses are host:port of some of the cluster's nodes (seeds); the client learns
	// the rest of the cluster from them.
	Addresses []string `json:"addresses"`
}

// Degradation is the level the DegradationPlan currently asks for.
type Degradation struct {
	// Level is 0 (normal) to 4; levels are cumulative: 1 no streaming upstream, 2 thinking
	// off, 3 fallback model, 4 static reply.
	Level int32 `json:"level,omitempty"`
	// CriticalMaxLevel is the most a Critical request is degraded. Default 2.
	CriticalMaxLevel *int32 `json:"criticalMaxLevel,omitempty"`
	// SheddableStepsAhead is how many levels ahead of Level a Sheddable request is degraded
	// while Level is above 0 (at most 4). Default 1.
	SheddableStepsAhead *int32 `json:"sheddableStepsAhead,omitempty"`
	// FallbackAvailable says whether the fallback upstream may take traffic. Default true when
	// a fallback is configured.
	FallbackAvailable *bool `json:"fallbackAvailable,omitempty"`
	// StaticResponse is the reply at level 4 and while no upstream can take a request; nil
	// means such requests get 503.
	StaticResponse *StaticResponse `json:"staticResponse,omitempty"`
	// Cache keeps successful answers to serve instead of the static reply (or 503) while no
	// upstream can take a request; nil means no cache.
	Cache *Cache `json:"cache,omitempty"`
}

// CacheBackend is where the response cache keeps its entries.
type CacheBackend string

// Cache backends.
const (
	// CacheMemory keeps entries in each gateway replica's memory, bounded by MaxBytes.
	CacheMemory CacheBackend = "Memory"
	// CacheRedis keeps entries in the rate limiter's Redis (rateLimit.redis), shared by the
	// replicas; while no rateLimit.redis is configured the gateway caches in memory.
	CacheRedis CacheBackend = "Redis"
)

// Cache configures the response cache. Answers are keyed by a hash of the endpoint, the API
// key id (unless ShareAcrossKeys) and every field of the request body except stream and
// stream_options, and served only where the request would otherwise get the static reply or
// 503: while the breakers leave no upstream, and at level 4 when ServeAtLevel4.
type Cache struct {
	// Backend is Memory (default) or Redis.
	Backend CacheBackend `json:"backend,omitempty"`
	// MaxBytes bounds the memory backend (least recently used entries are evicted); an answer
	// larger than MaxBytes/8 is not cached on either backend. Default 64 MiB.
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// TTL is how long an entry is served after it was stored. Default 10m.
	TTL metav1.Duration `json:"ttl,omitzero"`
	// ShareAcrossKeys serves an answer cached for one API key to the others.
	ShareAcrossKeys bool `json:"shareAcrossKeys,omitempty"`
	// ServeAtLevel4 serves cached answers at level 4 too, before the static reply.
	ServeAtLevel4 bool `json:"serveAtLevel4,omitempty"`
}

// StaticResponse is a fixed reply. A 2xx status gets an OpenAI completion carrying Message;
// any other status gets an OpenAI error carrying it.
type StaticResponse struct {
	// Message is the reply text.
	Message string `json:"message"`
	// HTTPStatus is the status code. Default 200.
	HTTPStatus int32 `json:"httpStatus,omitempty"`
}

// Breaker configures the consecutive-failure circuit breaker of each upstream.
type Breaker struct {
	// FailureThreshold consecutive failures open the breaker. Default 5.
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
	// RecoveryTimeout is how long the breaker stays open before probing. Default 30s.
	RecoveryTimeout metav1.Duration `json:"recoveryTimeout,omitzero"`
	// HalfOpenRequests probes must all succeed to close the breaker. Default 1.
	HalfOpenRequests int32 `json:"halfOpenRequests,omitempty"`
}

// FallbackUsable reports whether a fallback upstream is configured and available.
func (c *Config) FallbackUsable() bool {
	return c.Fallback != nil && (c.Degradation.FallbackAvailable == nil || *c.Degradation.FallbackAvailable)
}
