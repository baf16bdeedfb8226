package gatewayconfig

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults.
const (
	DefaultListen              = ":8080"
	DefaultAdminListen         = ":9090"
	DefaultMaxRequestBodyBytes = 1 << 20
	DefaultPasswordEnv         = "QWEN_REDIS_PASSWORD"
	DefaultBackendTimeout      = 50 * time.Millisecond
	DefaultConnectTimeout      = 5 * time.Second
	DefaultResponseHeader      = 300 * time.Second
	DefaultIdleTimeout         = 60 * time.Second
	DefaultRequestBodyTimeout  = 30 * time.Second
	DefaultClientWriteTimeout  = 30 * time.Second
	DefaultAssumedMaxTokens    = 4096
	DefaultIPv6PrefixLength    = 64
	DefaultFailureThreshold    = 5
	DefaultRecoveryTimeout     = 30 * time.Second
	DefaultHalfOpenRequests    = 1
	DefaultStaticStatus        = 200
	DefaultCacheMaxBytes       = 64 << 20
	DefaultCacheTTL            = 10 * time.Minute
)

// The default class levels: Critical at most L2, Sheddable one level ahead.
const (
	DefaultCriticalMaxLevel    = 2
	DefaultSheddableStepsAhead = 1
)

// DefaultMaxQueued is the default bound on the requests a replica holds in a LeakyBucket queue.
const DefaultMaxQueued = 100

// Default fills every unset field with its default, in place.
func (c *Config) Default() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if len(c.Models) == 0 && c.Upstream.Model != "" {
		c.Models = []string{c.Upstream.Model}
	}
	if c.Upstream.Name == "" {
		c.Upstream.Name = "primary"
	}
	if c.Fallback != nil && c.Fallback.Name == "" {
		c.Fallback.Name = "fallback"
	}
	if c.MaxRequestBodyBytes == 0 {
		c.MaxRequestBodyBytes = DefaultMaxRequestBodyBytes
	}
	setDuration(&c.Timeouts.Connect, DefaultConnectTimeout)
	setDuration(&c.Timeouts.ResponseHeader, DefaultResponseHeader)
	setDuration(&c.Timeouts.Idle, DefaultIdleTimeout)
	setDuration(&c.Timeouts.RequestBody, DefaultRequestBodyTimeout)
	setDuration(&c.Timeouts.ClientWrite, DefaultClientWriteTimeout)
	if c.RateLimit != nil {
		c.RateLimit.Default()
	}
	if c.Fallback != nil && c.Degradation.FallbackAvailable == nil {
		yes := true
		c.Degradation.FallbackAvailable = &yes
	}
	if c.Degradation.CriticalMaxLevel == nil {
		l := int32(DefaultCriticalMaxLevel)
		c.Degradation.CriticalMaxLevel = &l
	}
	if c.Degradation.SheddableStepsAhead == nil {
		l := int32(DefaultSheddableStepsAhead)
		c.Degradation.SheddableStepsAhead = &l
	}
	if s := c.Degradation.StaticResponse; s != nil && s.HTTPStatus == 0 {
		s.HTTPStatus = DefaultStaticStatus
	}
	if ca := c.Degradation.Cache; ca != nil {
		if ca.Backend == "" {
			ca.Backend = CacheMemory
		}
		if ca.MaxBytes == 0 {
			ca.MaxBytes = DefaultCacheMaxBytes
		}
		setDuration(&ca.TTL, DefaultCacheTTL)
	}
	if c.Breaker.FailureThreshold == 0 {
		c.Breaker.FailureThreshold = DefaultFailureThreshold
	}
	setDuration(&c.Breaker.RecoveryTimeout, DefaultRecoveryTimeout)
	if c.Breaker.HalfOpenRequests == 0 {
		c.Breaker.HalfOpenRequests = DefaultHalfOpenRequests
	}
}

// Default fills the unset fields of the policy with their defaults, in place.
func (r *RateLimit) Default() {
	if r.Mode == "" {
		r.Mode = ModeEnforce
	}
	if r.Key.Source == "" {
		r.Key.Source = KeyClientIP
	}
	if r.Algorithm == "" {
		r.Algorithm = Hybrid
	}
	if r.AssumedMaxTokens == 0 {
		r.AssumedMaxTokens = DefaultAssumedMaxTokens
	}
	if r.Criticality == "" {
		r.Criticality = Standard
	}
	if r.Queue != nil && r.Queue.MaxQueued == 0 {
		r.Queue.MaxQueued = DefaultMaxQueued
	}
	if r.Key.IPv6PrefixLength == 0 {
		r.Key.IPv6PrefixLength = DefaultIPv6PrefixLength
	}
	if r.FailureMode == "" {
		r.FailureMode = FailOpen
	}
	setDuration(&r.BackendTimeout, DefaultBackendTimeout)
	if r.Redis != nil && r.Redis.PasswordEnv == "" {
		r.Redis.PasswordEnv = DefaultPasswordEnv
	}
	if r.Replicas == 0 {
		r.Replicas = 1
	}
}

func setDuration(d *metav1.Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}
