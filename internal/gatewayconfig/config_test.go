package gatewayconfig

import (
	"strings"
	"testing"
	"time"
)

const minimal = `
upstream: {url: "http://engine:8000", model: Qwen3-1.7B}
`

func TestLoadDefaults(t *testing.T) {
	c, err := Load([]byte(minimal + `
fallback: {url: "http://fallback:8000", model: Qwen3-0.6B}
rateLimit:
  policy: p
  redis: {address: "redis:6379"}
degradation:
  staticResponse: {message: busy}
  cache: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"models", strings.Join(c.Models, ","), "Qwen3-1.7B"},
		{"upstream.name", c.Upstream.Name, "primary"},
		{"fallback.name", c.Fallback.Name, "fallback"},
		{"maxRequestBodyBytes", c.MaxRequestBodyBytes, int64(1 << 20)},
		{"timeouts.connect", c.Timeouts.Connect.Duration, 5 * time.Second},
		{"timeouts.responseHeader", c.Timeouts.ResponseHeader.Duration, 300 * time.Second},
		{"timeouts.idle", c.Timeouts.Idle.Duration, 60 * time.Second},
		{"rateLimit.mode", c.RateLimit.Mode, ModeEnforce},
		{"rateLimit.key.source", c.RateLimit.Key.Source, KeyClientIP},
		{"rateLimit.algorithm", c.RateLimit.Algorithm, Hybrid},
		{"rateLimit.failureMode", c.RateLimit.FailureMode, FailOpen},
		{"rateLimit.backendTimeout", c.RateLimit.BackendTimeout.Duration, 50 * time.Millisecond},
		{"rateLimit.redis.passwordEnv", c.RateLimit.Redis.PasswordEnv, "QWEN_REDIS_PASSWORD"},
		{"rateLimit.replicas", c.RateLimit.Replicas, int32(1)},
		{"degradation.fallbackAvailable", *c.Degradation.FallbackAvailable, true},
		{"degradation.staticResponse.httpStatus", c.Degradation.StaticResponse.HTTPStatus, int32(200)},
		{"degradation.cache.backend", c.Degradation.Cache.Backend, CacheMemory},
		{"degradation.cache.maxBytes", c.Degradation.Cache.MaxBytes, int64(64 << 20)},
		{"degradation.cache.ttl", c.Degradation.Cache.TTL.Duration, 10 * time.Minute},
		{"breaker.failureThreshold", c.Breaker.FailureThreshold, int32(5)},
		{"breaker.recoveryTimeout", c.Breaker.RecoveryTimeout.Duration, 30 * time.Second},
		{"breaker.halfOpenRequests", c.Breaker.HalfOpenRequests, int32(1)},
		{"FallbackUsable", c.FallbackUsable(), true},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoadKeepsSetValues(t *testing.T) {
	c, err := Load([]byte(`
listen: "127.0.0.1:9000"
models: [a, b]
upstream: {name: eng, url: "https://engine", model: m}
timeouts: {connect: 1s, responseHeader: 2m, idle: 3s}
breaker: {failureThreshold: 3, recoveryTimeout: 10s, halfOpenRequests: 2}
rateLimit:
  policy: p
  mode: Shadow
  key: {source: Header, header: X-User-Id}
  algorithm: LeakyBucket
  failureMode: FailClosed
  backendTimeout: 20ms
  replicas: 3
  limits: {requestsPerMinute: 30, burst: 10, tokensPerMinute: 600, inputTokensPerMinute: 1, outputTokensPerMinute: 2, maxConcurrentRequests: 4}
  overrides: [{name: premium, keys: [team-a], limits: {requestsPerMinute: 600}}]
degradation: {level: 3, staticResponse: {message: x, httpStatus: 503}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || len(c.Models) != 2 || c.Upstream.Name != "eng" ||
		c.Timeouts.ResponseHeader.Duration != 2*time.Minute || c.Breaker.HalfOpenRequests != 2 ||
		c.RateLimit.Mode != ModeShadow || c.RateLimit.Key.Header != "X-User-Id" ||
		c.RateLimit.Algorithm != LeakyBucket || c.RateLimit.FailureMode != FailClosed ||
		c.RateLimit.BackendTimeout.Duration != 20*time.Millisecond || c.RateLimit.Replicas != 3 ||
		c.RateLimit.Limits.MaxConcurrentRequests != 4 || c.RateLimit.Overrides[0].Limits.RequestsPerMinute != 600 ||
		c.Degradation.Level != 3 || c.Degradation.StaticResponse.HTTPStatus != 503 || c.FallbackUsable() {
		t.Errorf("set values not kept: %+v", c)
	}
}

func TestLoadRejectsUnknownFields(t *testing.T) {
	_, err := Load([]byte(minimal + "rateLimt: {}\n"))
	if err == nil || !strings.Contains(err.Error(), "rateLimt") {
		t.Fatalf("err = %v, want unknown field rateLimt", err)
	}
	_, err = Load([]byte(minimal + "breaker: {failureTreshold: 3}\n"))
	if err == nil || !strings.Contains(err.Error(), "failureTreshold") {
		t.Fatalf("err = %v, want unknown field failureTreshold", err)
	}
}

func TestLoadRejectsBadDuration(t *testing.T) {
	_, err := Load([]byte(minimal + "breaker: {recoveryTimeout: 30}\n"))
	if err == nil {
		t.Fatal("want error for a duration without unit")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"no upstream url", `upstream: {model: m}`, "upstream.url: must be set"},
		{"no upstream model", `upstream: {url: "http://e"}`, "upstream.model: must be set"},
		{"no models", `upstream: {url: "http://e"}`, "models: must name at least one model"},
		{"empty model name", minimal + `models: [""]`, "models[0]: must not be empty"},
		{"bad scheme", `upstream: {url: "ftp://e", model: m}`, "upstream.url: must use http or https"},
		{"no host", `upstream: {url: "http://", model: m}`, "upstream.url: must have a host"},
		{"path in url", `upstream: {url: "http://e/v1", model: m}`, "upstream.url: must be a base URL"},
		{"bad url", `upstream: {url: "http://e:x:y", model: m}`, "upstream.url: must be a URL"},
		{"fallback no model", minimal + `fallback: {url: "http://f"}`, "fallback.model: must be set"},
		{"fallback named static", minimal + `fallback: {name: static, url: "http://f", model: f}`, `fallback.name: "static" names the gateway's static reply`},
		{"fallback named cache", minimal + `fallback: {name: cache, url: "http://f", model: f}`, `fallback.name: "cache" names a reply from the response cache`},
		{"fallback same name", minimal + `fallback: {name: primary, url: "http://f", model: f}`, "fallback.name: must differ from upstream.name"},
		{"negative body", minimal + `maxRequestBodyBytes: -1`, "maxRequestBodyBytes: must be >= 0"},
		{"bad proxy", minimal + `trustedProxies: [10.0.0.0/8, nope]`, "trustedProxies[1]: must be an IP or CIDR"},
		{"negative timeout", minimal + `timeouts: {idle: -1s}`, "timeouts.idle: must be > 0"},
		{"negative connect", minimal + `timeouts: {connect: -1s}`, "timeouts.connect: must be > 0"},
		{"negative header", minimal + `timeouts: {responseHeader: -1s}`, "timeouts.responseHeader: must be > 0"},
		{"no policy", minimal + `rateLimit: {}`, "rateLimit.policy: must be set"},
		{"bad mode", minimal + `rateLimit: {policy: p, mode: Audit}`, `rateLimit.mode: must be Enforce or Shadow, not "Audit"`},
		{"bad key source", minimal + `rateLimit: {policy: p, key: {source: Cookie}}`, "rateLimit.key.source: must be APIKey, ClientIP or Header"},
		{"queue not leaky", minimal + `rateLimit: {policy: p, queue: {maxWait: 1s}}`, `rateLimit.queue: needs algorithm LeakyBucket, not "Hybrid"`},
		{"queue no wait", minimal + `rateLimit: {policy: p, algorithm: LeakyBucket, queue: {maxWait: 0s}}`, "rateLimit.queue.maxWait: must be greater than 0s and at most 10m0s"},
		{"queue too big", minimal + `rateLimit: {policy: p, algorithm: LeakyBucket, queue: {maxWait: 1s, maxQueued: 100001}}`, "rateLimit.queue.maxQueued: must be between 1 and 100000"},
		{"header without name", minimal + `rateLimit: {policy: p, key: {source: Header}}`, "rateLimit.key.header: must be set when key.source is Header"},
		{"bad header name", minimal + `rateLimit: {policy: p, key: {source: Header, header: "X User"}}`, `rateLimit.key.header: "X User" is not a valid header name`},
		{"bad algorithm", minimal + `rateLimit: {policy: p, algorithm: GCRA}`, "rateLimit.algorithm: must be TokenBucket"},
		{"negative rpm", minimal + `rateLimit: {policy: p, limits: {requestsPerMinute: -1}}`, "rateLimit.limits.requestsPerMinute: must be >= 0"},
		{"negative burst", minimal + `rateLimit: {policy: p, limits: {burst: -1}}`, "rateLimit.limits.burst: must be >= 0"},
		{"negative tpm", minimal + `rateLimit: {policy: p, limits: {tokensPerMinute: -1}}`, "rateLimit.limits.tokensPerMinute: must be >= 0"},
		{"negative input", minimal + `rateLimit: {policy: p, limits: {inputTokensPerMinute: -1}}`, "rateLimit.limits.inputTokensPerMinute: must be >= 0"},
		{"negative output", minimal + `rateLimit: {policy: p, limits: {outputTokensPerMinute: -1}}`, "rateLimit.limits.outputTokensPerMinute: must be >= 0"},
		{"negative concurrency", minimal + `rateLimit: {policy: p, limits: {maxConcurrentRequests: -1}}`, "rateLimit.limits.maxConcurrentRequests: must be >= 0"},
		{"override no name", minimal + `rateLimit: {policy: p, key: {source: APIKey}, overrides: [{keys: [a]}]}`, "rateLimit.overrides[0].name: must be set"},
		{"override duplicate", minimal + `rateLimit: {policy: p, key: {source: APIKey}, overrides: [{name: a, keys: [a]}, {name: a, keys: [b]}]}`, `rateLimit.overrides[1].name: duplicate override "a"`},
		{"override no keys", minimal + `rateLimit: {policy: p, overrides: [{name: a}]}`, "rateLimit.overrides[0].keys: must list at least one key"},
		{"override empty key", minimal + `rateLimit: {policy: p, key: {source: APIKey}, overrides: [{name: a, keys: [""]}]}`, "rateLimit.overrides[0].keys[0]: must not be empty"},
		{"override bad ip", minimal + `rateLimit: {policy: p, overrides: [{name: a, keys: [team-a]}]}`, "rateLimit.overrides[0].keys[0]: must be an IP or CIDR when key.source is ClientIP"},
		{"override negative", minimal + `rateLimit: {policy: p, overrides: [{name: a, keys: [1.2.3.4], limits: {burst: -2}}]}`, "rateLimit.overrides[0].limits.burst: must be >= 0"},
		{"bad failure mode", minimal + `rateLimit: {policy: p, failureMode: FailSometimes}`, "rateLimit.failureMode: must be FailOpen or FailClosed"},
		{"negative backend timeout", minimal + `rateLimit: {policy: p, backendTimeout: -1ms}`, "rateLimit.backendTimeout: must be > 0"},
		{"redis no address", minimal + `rateLimit: {policy: p, redis: {tls: true}}`, "rateLimit.redis.address: exactly one of address, sentinel and cluster must be set"},
		{"redis address and cluster", minimal + `rateLimit: {policy: p, redis: {address: "r:6379", cluster: {addresses: ["c:6379"]}}}`, "rateLimit.redis.address: exactly one of address, sentinel and cluster must be set"},
		{"redis address without port", minimal + `rateLimit: {policy: p, redis: {address: redis}}`, `rateLimit.redis.address: must be host:port, not "redis"`},
		{"sentinel no master name", minimal + `rateLimit: {policy: p, redis: {sentinel: {addresses: ["s:26379"]}}}`, "rateLimit.redis.sentinel.masterName: must be set"},
		{"sentinel no addresses", minimal + `rateLimit: {policy: p, redis: {sentinel: {masterName: m}}}`, "rateLimit.redis.sentinel.addresses: must list at least one host:port"},
		{"sentinel bad address", minimal + `rateLimit: {policy: p, redis: {sentinel: {masterName: m, addresses: ["s:26379", "s2"]}}}`, `rateLimit.redis.sentinel.addresses[1]: must be host:port, not "s2"`},
		{"cluster no addresses", minimal + `rateLimit: {policy: p, redis: {cluster: {}}}`, "rateLimit.redis.cluster.addresses: must list at least one host:port"},
		{"cluster bad address", minimal + `rateLimit: {policy: p, redis: {cluster: {addresses: [":6379"]}}}`, `rateLimit.redis.cluster.addresses[0]: must be host:port`},
		{"ca file without tls", minimal + `rateLimit: {policy: p, redis: {address: "r:6379", caFile: /ca.pem}}`, "rateLimit.redis.caFile: applies only with tls: true"},
		{"negative replicas", minimal + `rateLimit: {policy: p, replicas: -1}`, "rateLimit.replicas: must be >= 1"},
		{"level too high", minimal + `degradation: {level: 5}`, "degradation.level: must be between 0 and 4"},
		{"level negative", minimal + `degradation: {level: -1}`, "degradation.level: must be between 0 and 4"},
		{"fallback available without fallback", minimal + `degradation: {fallbackAvailable: true}`, "degradation.fallbackAvailable: must not be true without a fallback upstream"},
		{"static no message", minimal + `degradation: {staticResponse: {httpStatus: 200}}`, "degradation.staticResponse.message: must be set"},
		{"static bad status", minimal + `degradation: {staticResponse: {message: m, httpStatus: 99}}`, "degradation.staticResponse.httpStatus: must be between 200 and 599"},
		{"cache bad backend", minimal + `degradation: {cache: {backend: Disk}}`, `degradation.cache.backend: must be Memory or Redis, not "Disk"`},
		{"cache too small", minimal + `degradation: {cache: {maxBytes: 1000}}`, "degradation.cache.maxBytes: must be >= 65536"},
		{"cache negative ttl", minimal + `degradation: {cache: {ttl: -1s}}`, "degradation.cache.ttl: must be > 0"},
		{"breaker threshold", minimal + `breaker: {failureThreshold: -1}`, "breaker.failureThreshold: must be >= 1"},
		{"breaker recovery", minimal + `breaker: {recoveryTimeout: -1s}`, "breaker.recoveryTimeout: must be > 0"},
		{"breaker half open", minimal + `breaker: {halfOpenRequests: -3}`, "breaker.halfOpenRequests: must be >= 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	_, err := Load([]byte(`
upstream: {url: "http://e", model: m}
breaker: {failureThreshold: -1, halfOpenRequests: -1}
`))
	if err == nil || !strings.Contains(err.Error(), "breaker.failureThreshold") || !strings.Contains(err.Error(), "breaker.halfOpenRequests") {
		t.Fatalf("err = %v, want both breaker fields", err)
	}
}

func TestValidateListenMustBeSet(t *testing.T) {
	c := Config{Upstream: Upstream{URL: "http://e", Model: "m"}}
	c.Default()
	c.Listen = ""
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "listen: must be set") {
		t.Fatalf("err = %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c, err := Load([]byte(minimal + `
rateLimit: {policy: p, limits: {requestsPerMinute: 30}, overrides: [{name: vip, keys: [10.0.0.0/8], limits: {requestsPerMinute: 300}}]}
degradation: {level: 2}
trustedProxies: [10.0.0.0/8]
`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(out)
	if err != nil {
		t.Fatalf("reload of marshalled config: %v\n%s", err, out)
	}
	out2, _ := Marshal(back)
	if string(out) != string(out2) {
		t.Fatalf("round trip differs:\n%s\n---\n%s", out, out2)
	}
}

func TestMarshalOmitsUnsetBeforeDefaulting(t *testing.T) {
	out, err := Marshal(&Config{Upstream: Upstream{URL: "http://e", Model: "m"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "upstream:\n  model: m\n  url: http://e\n"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8":     "10.0.0.0/8",
		"10.1.2.3":       "10.1.2.3/32",
		"::ffff:1.2.3.4": "1.2.3.4/32",
		"fd00::1":        "fd00::1/128",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
}
