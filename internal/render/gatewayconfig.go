package render

import (
	"fmt"

	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// GatewayConfig is the gateway configuration of in: the upstreams, auth, the policy's
// enforced limits (see Enforced), the plan's level, static reply and breaker. Fields the inputs leave open
// stay zero so the gateway applies its own defaults (gatewayconfig.Config.Default).
func GatewayConfig(in Inputs) *gatewayconfig.Config {
	qs := in.Service
	gw := qs.Spec.Gateway
	port := enginePort(qs.Spec.Engine)
	served := ServedName(qs.Spec.Model)
	c := &gatewayconfig.Config{
		Listen:      fmt.Sprintf(":%d", GatewayPort),
		AdminListen: fmt.Sprintf(":%d", GatewayAdminPort),
		Models:      []string{served},
		Upstream: gatewayconfig.Upstream{
			Name: "primary", URL: serviceURL(EngineName(qs), qs.Namespace, port), Model: served,
		},
		MaxRequestBodyBytes: ptr.Deref(gw.MaxRequestBodyBytes, 0),
		TrustedProxies:      gw.TrustedProxies,
		TrustedHops:         TrustedHops(qs),
		Degradation:         gatewayconfig.Degradation{Level: Level(in.Plan)},
	}
	if fb := qs.Spec.Fallback; fb != nil {
		c.Fallback = &gatewayconfig.Upstream{
			Name: "fallback", URL: serviceURL(FallbackName(qs), qs.Namespace, FallbackPort(qs)), Model: ServedName(fb.Model),
		}
		if in.FallbackUnavailable {
			c.Degradation.FallbackAvailable = ptr.To(false)
		}
	}
	if gw.APIKeysSecretRef != nil {
		c.Auth.KeysDir = GatewayKeysDir
	}
	if e := Enforced(in.Policy); e != nil {
		c.RateLimit = rateLimitConfig(in.Policy, e, gw)
	}
	if plan := in.Plan; plan != nil {
		sr := plan.Spec.StaticResponse
		if sr.Message != "" {
			c.Degradation.StaticResponse = &gatewayconfig.StaticResponse{Message: sr.Message, HTTPStatus: sr.HTTPStatus}
		}
		c.Degradation.Cache = cacheConfig(plan.Spec.Cache)
		c.Degradation.CriticalMaxLevel = plan.Spec.Classes.CriticalMaxLevel
		c.Degradation.SheddableStepsAhead = plan.Spec.Classes.SheddableStepsAhead
		cb := plan.Spec.CircuitBreaker
		c.Breaker = gatewayconfig.Breaker{
			FailureThreshold: cb.FailureThreshold, RecoveryTimeout: cb.RecoveryTimeout, HalfOpenRequests: cb.HalfOpenRequests,
		}
	}
	return c
}

// rateLimitConfig copies a policy's enforced settings and limits (e) into the gateway config.
// Without Redis every replica limits locally, so the gateway is told the replica count to
// divide by.
func rateLimitConfig(p *v1alpha1.RateLimitPolicy, e *v1alpha1.EffectivePolicy, gw v1alpha1.GatewaySpec) *gatewayconfig.RateLimit {
	rl := &gatewayconfig.RateLimit{
		Policy: p.Name,
		Mode:   gatewayconfig.Mode(e.Mode),
		Key: gatewayconfig.Key{Source: gatewayconfig.KeySource(e.Key.Source), Header: e.Key.Header,
			IPv6PrefixLength: ptr.Deref(e.Key.IPv6PrefixLength, 0)},
		Algorithm:         gatewayconfig.Algorithm(e.Algorithm),
		AssumedMaxTokens:  ptr.Deref(e.AssumedMaxTokens, 0),
		Limits:            limits(e.Limits),
		FailureMode:       gatewayconfig.FailureMode(e.FailureMode),
		ActiveSchedule:    p.Status.ActiveSchedule,
		Criticality:       gatewayconfig.Criticality(e.Criticality),
		CriticalityHeader: e.CriticalityHeader,
	}
	if q := e.Queue; q != nil {
		rl.Queue = &gatewayconfig.Queue{MaxWait: q.MaxWait, MaxQueued: int64(ptr.Deref(q.MaxQueued, 0))}
	}
	for _, o := range e.Overrides {
		rl.Overrides = append(rl.Overrides, gatewayconfig.Override{
			Name: o.Name, Keys: append([]string(nil), o.Keys...), Limits: limits(o.Limits),
			Criticality: gatewayconfig.Criticality(o.Criticality),
		})
	}
	if r := gw.Redis; r != nil {
		rl.Redis = redisConfig(r)
	} else {
		rl.Replicas = gatewayReplicas(gw)
	}
	return rl
}

// cacheConfig is the gateway's response cache of a plan's spec.cache, nil when it is off.
// The Redis backend uses the limiter's Redis (rendered from spec.gateway.redis with the policy).
func cacheConfig(rc *v1alpha1.ResponseCache) *gatewayconfig.Cache {
	if rc == nil || !rc.Enabled {
		return nil
	}
	return &gatewayconfig.Cache{Backend: gatewayconfig.CacheBackend(rc.Backend), MaxBytes: rc.MaxBytes, TTL: rc.TTL,
		ShareAcrossKeys: rc.ShareAcrossKeys, ServeAtLevel4: rc.ServeAtLevel4}
}

// TrustedHops is the number of X-Forwarded-For hops the gateway trusts: spec.gateway.trustedHops,
// else 1 for an exposed service (ingress-nginx and Envoy Gateway each append the address they
// were called from, so the right-most entry is the client), else 0.
func TrustedHops(qs *v1alpha1.QwenService) int32 {
	if h := qs.Spec.Gateway.TrustedHops; h != nil {
		return *h
	}
	if qs.Spec.Exposure != nil {
		return 1
	}
	return 0
}

// redisConfig is the gateway's view of spec.gateway.redis: the passwords come from the
// environment (gatewayEnv), the CA bundle from a mounted file.
func redisConfig(r *v1alpha1.RedisSpec) *gatewayconfig.Redis {
	c := &gatewayconfig.Redis{Address: r.Address, PasswordEnv: RedisPasswordEnv, TLS: r.TLS}
	if s := r.Sentinel; s != nil {
		c.Sentinel = &gatewayconfig.RedisSentinel{MasterName: s.MasterName, Addresses: append([]string(nil), s.Addresses...)}
		if s.PasswordSecretRef != nil {
			c.Sentinel.PasswordEnv = RedisSentinelPasswordEnv
		}
	}
	if cl := r.Cluster; cl != nil {
		c.Cluster = &gatewayconfig.RedisCluster{Addresses: append([]string(nil), cl.Addresses...)}
	}
	if r.CASecretRef != nil {
		c.CAFile = RedisCAFile
	}
	return c
}

func limits(l v1alpha1.LimitSet) gatewayconfig.Limits {
	return gatewayconfig.Limits{
		RequestsPerMinute:     int64(ptr.Deref(l.RequestsPerMinute, 0)),
		Burst:                 int64(ptr.Deref(l.Burst, 0)),
		TokensPerMinute:       ptr.Deref(l.TokensPerMinute, 0),
		InputTokensPerMinute:  ptr.Deref(l.InputTokensPerMinute, 0),
		OutputTokensPerMinute: ptr.Deref(l.OutputTokensPerMinute, 0),
		MaxConcurrentRequests: int64(ptr.Deref(l.MaxConcurrentRequests, 0)),
		RequestsPerHour:       int64(ptr.Deref(l.RequestsPerHour, 0)),
		RequestsPerDay:        int64(ptr.Deref(l.RequestsPerDay, 0)),
		TokensPerHour:         ptr.Deref(l.TokensPerHour, 0),
		TokensPerDay:          ptr.Deref(l.TokensPerDay, 0),
	}
}

func serviceURL(name, namespace string, port int32) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", name, namespace, port)
}

// validateGatewayConfig checks c the way the gateway will when it loads it.
func validateGatewayConfig(c *gatewayconfig.Config) error {
	out, err := gatewayconfig.Marshal(c)
	if err != nil {
		return err
	}
	if _, err := gatewayconfig.Load(out); err != nil {
		return &InvalidError{Reason: ReasonInvalidGatewayConfig, Message: err.Error()}
	}
	return nil
}
