package gatewayconfig

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Validate reports every problem of a defaulted Config, each prefixed by its field path, e.g.
// "rateLimit.limits.requestsPerMinute: must be >= 0".
func (c *Config) Validate() error {
	var v validator
	if c.Listen == "" {
		v.add("listen", "must be set")
	}
	if c.AdminListen == "" {
		v.add("adminListen", "must be set")
	} else if c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		v.add("adminListen", "must differ from listen: the API port must not serve /metrics")
	}
	if len(c.Models) == 0 {
		v.add("models", "must name at least one model")
	}
	for i, m := range c.Models {
		if strings.TrimSpace(m) == "" {
			v.add(fmt.Sprintf("models[%d]", i), "must not be empty")
		}
	}
	v.upstream("upstream", &c.Upstream)
	if c.Fallback != nil {
		v.upstream("fallback", c.Fallback)
		if c.Fallback.Name == c.Upstream.Name {
			v.add("fallback.name", "must differ from upstream.name")
		}
	}
	if c.MaxRequestBodyBytes < 0 {
		v.add("maxRequestBodyBytes", "must be >= 0")
	}
	for i, p := range c.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			v.add(fmt.Sprintf("trustedProxies[%d]", i), "must be an IP or CIDR: "+err.Error())
		}
	}
	v.positive("timeouts.connect", c.Timeouts.Connect.Duration)
	v.positive("timeouts.responseHeader", c.Timeouts.ResponseHeader.Duration)
	if c.TrustedHops < 0 || c.TrustedHops > MaxTrustedHops {
		v.add("trustedHops", fmt.Sprintf("must be between 0 and %d", MaxTrustedHops))
	}
	v.positive("timeouts.idle", c.Timeouts.Idle.Duration)
	v.positive("timeouts.requestBody", c.Timeouts.RequestBody.Duration)
	v.positive("timeouts.clientWrite", c.Timeouts.ClientWrite.Duration)
	if c.RateLimit != nil {
		v.rateLimit("rateLimit", c.RateLimit)
	}
	v.degradation("degradation", &c.Degradation, c.Fallback != nil)
	v.breaker("breaker", &c.Breaker)
	return v.err()
}

// ParsePrefix parses a CIDR or a single IP (as a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Bounds of the client identity settings.
const (
	// MaxTrustedHops bounds TrustedHops: no deployment has more proxies in front of it.
	MaxTrustedHops = 10
	// MinIPv6PrefixLength bounds Key.IPv6PrefixLength: a shorter prefix would put whole
	// providers in one bucket.
	MinIPv6PrefixLength = 16
)

type validator struct{ errs []string }

func (v *validator) add(path, msg string) { v.errs = append(v.errs, path+": "+msg) }

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(v.errs, "; "))
}

func (v *validator) nonNegative(path string, n int64) {
	if n < 0 {
		v.add(path, "must be >= 0")
	}
}

func (v *validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.add(path, "must be > 0")
	}
}

func (v *validator) upstream(path string, u *Upstream) {
	switch u.Name {
	case "":
		v.add(path+".name", "must be set")
	case StaticUpstream:
		v.add(path+".name", `"static" names the gateway's static reply in metrics and headers`)
	case CacheUpstream:
		v.add(path+".name", `"cache" names a reply from the response cache in metrics and headers`)
	}
	if u.Model == "" {
		v.add(path+".model", "must be set")
	}
	p, err := url.Parse(u.URL)
	switch {
	case u.URL == "":
		v.add(path+".url", "must be set")
	case err != nil:
		v.add(path+".url", "must be a URL: "+err.Error())
	case p.Scheme != "http" && p.Scheme != "https":
		v.add(path+".url", "must use http or https")
	case p.Host == "":
		v.add(path+".url", "must have a host")
	case strings.TrimSuffix(p.Path, "/") != "" || p.RawQuery != "":
		v.add(path+".url", "must be a base URL without path or query (the gateway appends /v1/...)")
	}
}

func (v *validator) rateLimit(path string, r *RateLimit) {
	if r.Policy == "" {
		v.add(path+".policy", "must be set")
	}
	switch r.Mode {
	case ModeEnforce, ModeShadow:
	default:
		v.add(path+".mode", fmt.Sprintf("must be Enforce or Shadow, not %q", r.Mode))
	}
	switch r.Key.Source {
	case KeyAPIKey, KeyClientIP:
	case KeyHeader:
		if r.Key.Header == "" {
			v.add(path+".key.header", "must be set when key.source is Header")
		} else if !httpguts.ValidHeaderFieldName(r.Key.Header) {
			v.add(path+".key.header", fmt.Sprintf("%q is not a valid header name", r.Key.Header))
		}
	default:
		v.add(path+".key.source", fmt.Sprintf("must be APIKey, ClientIP or Header, not %q", r.Key.Source))
	}
	if l := r.Key.IPv6PrefixLength; l < MinIPv6PrefixLength || l > 128 {
		v.add(path+".key.ipv6PrefixLength", fmt.Sprintf("must be between %d and 128", MinIPv6PrefixLength))
	}
	if r.AssumedMaxTokens < 1 {
		v.add(path+".assumedMaxTokens", "must be >= 1")
	}
	switch r.Algorithm {
	case TokenBucket, SlidingWindow, SlidingLog, FixedWindow, LeakyBucket, Hybrid:
	default:
		v.add(path+".algorithm", fmt.Sprintf("must be TokenBucket, SlidingWindow, SlidingLog, FixedWindow, LeakyBucket or Hybrid, not %q", r.Algorithm))
	}
	if q := r.Queue; q != nil {
		if r.Algorithm != LeakyBucket {
			v.add(path+".queue", fmt.Sprintf("needs algorithm LeakyBucket, not %q", r.Algorithm))
		}
		if d := q.MaxWait.Duration; d <= 0 || d > MaxQueueWait {
			v.add(path+".queue.maxWait", fmt.Sprintf("must be greater than 0s and at most %s, not %s", MaxQueueWait, d))
		}
		if q.MaxQueued < 1 || q.MaxQueued > 100000 {
			v.add(path+".queue.maxQueued", fmt.Sprintf("must be between 1 and 100000, not %d", q.MaxQueued))
		}
	}
	v.criticality(path+".criticality", r.Criticality, false)
	if h := r.CriticalityHeader; h != "" && !httpguts.ValidHeaderFieldName(h) {
		v.add(path+".criticalityHeader", fmt.Sprintf("must be a header name, not %q", h))
	}
	v.limits(path+".limits", &r.Limits)
	names := map[string]bool{}
	for i, o := range r.Overrides {
		op := fmt.Sprintf("%s.overrides[%d]", path, i)
		if o.Name == "" {
			v.add(op+".name", "must be set")
		} else if names[o.Name] {
			v.add(op+".name", fmt.Sprintf("duplicate override %q", o.Name))
		}
		names[o.Name] = true
		if len(o.Keys) == 0 {
			v.add(op+".keys", "must list at least one key")
		}
		for j, k := range o.Keys {
			kp := fmt.Sprintf("%s.keys[%d]", op, j)
			if k == "" {
				v.add(kp, "must not be empty")
			} else if r.Key.Source == KeyClientIP {
				if _, err := ParsePrefix(k); err != nil {
					v.add(kp, "must be an IP or CIDR when key.source is ClientIP: "+err.Error())
				}
			}
		}
		v.limits(op+".limits", &o.Limits)
		v.criticality(op+".criticality", o.Criticality, true)
	}
	switch r.FailureMode {
	case FailOpen, FailClosed:
	default:
		v.add(path+".failureMode", fmt.Sprintf("must be FailOpen or FailClosed, not %q", r.FailureMode))
	}
	v.positive(path+".backendTimeout", r.BackendTimeout.Duration)
	if r.Redis != nil {
		v.redis(path+".redis", r.Redis)
	}
	if r.Replicas < 1 {
		v.add(path+".replicas", "must be >= 1")
	}
}

func (v *validator) redis(path string, r *Redis) {
	set := 0
	for _, ok := range []bool{r.Address != "", r.Sentinel != nil, r.Cluster != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		v.add(path+".address", "exactly one of address, sentinel and cluster must be set")
	}
	if r.Address != "" {
		v.hostPort(path+".address", r.Address)
	}
	if s := r.Sentinel; s != nil {
		if s.MasterName == "" {
			v.add(path+".sentinel.masterName", "must be set")
		}
		v.hostPorts(path+".sentinel.addresses", s.Addresses)
	}
	if c := r.Cluster; c != nil {
		v.hostPorts(path+".cluster.addresses", c.Addresses)
	}
	if r.CAFile != "" && !r.TLS {
		v.add(path+".caFile", "applies only with tls: true")
	}
}

func (v *validator) hostPorts(path string, addrs []string) {
	if len(addrs) == 0 {
		v.add(path, "must list at least one host:port")
	}
	for i, a := range addrs {
		v.hostPort(fmt.Sprintf("%s[%d]", path, i), a)
	}
}

func (v *validator) hostPort(path, addr string) {
	if host, port, err := net.SplitHostPort(addr); err != nil || host == "" || port == "" {
		v.add(path, fmt.Sprintf("must be host:port, not %q", addr))
	}
}

// MaxQueueWait is the longest Queue.MaxWait.
const MaxQueueWait = 10 * time.Minute

func (v *validator) limits(path string, l *Limits) {
	v.nonNegative(path+".requestsPerMinute", l.RequestsPerMinute)
	v.nonNegative(path+".burst", l.Burst)
	v.nonNegative(path+".tokensPerMinute", l.TokensPerMinute)
	v.nonNegative(path+".inputTokensPerMinute", l.InputTokensPerMinute)
	v.nonNegative(path+".outputTokensPerMinute", l.OutputTokensPerMinute)
	v.nonNegative(path+".maxConcurrentRequests", l.MaxConcurrentRequests)
	v.nonNegative(path+".requestsPerHour", l.RequestsPerHour)
	v.nonNegative(path+".requestsPerDay", l.RequestsPerDay)
	v.nonNegative(path+".tokensPerHour", l.TokensPerHour)
	v.nonNegative(path+".tokensPerDay", l.TokensPerDay)
}

func (v *validator) criticality(path string, c Criticality, optional bool) {
	switch {
	case c == Critical || c == Standard || c == Sheddable:
	case c == "" && optional:
	default:
		v.add(path, fmt.Sprintf("must be Critical, Standard or Sheddable, not %q", c))
	}
}

func (v *validator) degradation(path string, d *Degradation, hasFallback bool) {
	if d.Level < 0 || d.Level > 4 {
		v.add(path+".level", "must be between 0 and 4")
	}
	if l := d.CriticalMaxLevel; l == nil || *l < 0 || *l > 4 {
		v.add(path+".criticalMaxLevel", "must be between 0 and 4")
	}
	if l := d.SheddableStepsAhead; l == nil || *l < 0 || *l > 4 {
		v.add(path+".sheddableStepsAhead", "must be between 0 and 4")
	}
	if d.FallbackAvailable != nil && *d.FallbackAvailable && !hasFallback {
		v.add(path+".fallbackAvailable", "must not be true without a fallback upstream")
	}
	if s := d.StaticResponse; s != nil {
		if s.Message == "" {
			v.add(path+".staticResponse.message", "must be set")
		}
		if s.HTTPStatus < 200 || s.HTTPStatus > 599 {
			v.add(path+".staticResponse.httpStatus", "must be between 200 and 599")
		}
	}
	if ca := d.Cache; ca != nil {
		if ca.Backend != CacheMemory && ca.Backend != CacheRedis {
			v.add(path+".cache.backend", fmt.Sprintf("must be Memory or Redis, not %q", ca.Backend))
		}
		if ca.MaxBytes < MinCacheBytes {
			v.add(path+".cache.maxBytes", fmt.Sprintf("must be >= %d", MinCacheBytes))
		}
		v.positive(path+".cache.ttl", ca.TTL.Duration)
	}
}

// MinCacheBytes is the smallest response cache: room for a few answers.
const MinCacheBytes = 64 << 10

func (v *validator) breaker(path string, b *Breaker) {
	if b.FailureThreshold < 1 {
		v.add(path+".failureThreshold", "must be >= 1")
	}
	v.positive(path+".recoveryTimeout", b.RecoveryTimeout.Duration)
	if b.HalfOpenRequests < 1 {
		v.add(path+".halfOpenRequests", "must be >= 1")
	}
}
