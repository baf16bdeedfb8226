package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// OverLimitCache wraps a shared Limiter (Redis) so that a key over its limit costs it no
// more calls: once a decision of n units for (key, rule) is rejected, the cache remembers
// that n or more units cannot be admitted before the earliest time the rejection named
// (now + RetryAfter), and rejects them locally until then, as envoyproxy/ratelimit's local
// cache does. A flood from one client then costs one Redis round trip per RetryAfter, not
// one per request.
//
// The cache never admits and never rejects what the wrapped limiter would admit, as long as
// other gateways only add traffic: a rejection's RetryAfter is the earliest instant the same
// request could pass with no other traffic, and more traffic only makes it later. The
// instant is measured from the now passed in, which precedes the server's own decision, so
// the cache lets go no later than Redis would. A refund (Adjust with delta < 0) through the
// cache forgets the key's rejection at once; a refund through another gateway's is seen
// when the remembered rejection runs out (at worst a client waits out its RetryAfter).
//
// A cached rejection's Decision carries the remembered Remaining, RetryAfter until the
// remembered instant and Reset counted down from the remembered one. Charges since (Adjust,
// other gateways) may leave less than that Remaining and may push the instant a request could
// pass later (as may a larger n than the one rejected): the RetryAfter is never too late.
type OverLimitCache struct {
	inner  Limiter
	seed   maphash.Seed
	shards [cacheShards]cacheShard
	max    int // entries per shard
	hits   atomic.Int64
}

const cacheShards = 16

type cacheShard struct {
	mu      sync.Mutex
	entries map[cacheKey]overLimit
	_       [64 - 16]byte
}

type cacheKey struct {
	key string
	p   params
}

// overLimit is a remembered rejection of n units until until (UnixMicro), under the rule's
// MaxWait (µs; a LeakyBucket with another MaxWait would admit at another time).
type overLimit struct {
	n, until, resetAt, remaining, maxWait int64
}

// OverLimitCacheOptions configure NewOverLimitCache.
type OverLimitCacheOptions struct {
	// MaxKeys bounds the (key, rule) pairs remembered; default 100 000. Past it, rejections
	// are not remembered until entries expire.
	MaxKeys int
}

var _ Limiter = (*OverLimitCache)(nil)

// NewOverLimitCache returns inner with an over-limit cache in front.
func NewOverLimitCache(inner Limiter, opts OverLimitCacheOptions) *OverLimitCache {
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = 100_000
	}
	c := &OverLimitCache{inner: inner, seed: maphash.MakeSeed(), max: max(opts.MaxKeys/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].entries = map[cacheKey]overLimit{}
	}
	return c
}

func (c *OverLimitCache) shard(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)%cacheShards]
}

// Hits is the number of decisions the cache answered without the wrapped limiter.
func (c *OverLimitCache) Hits() int64 { return c.hits.Load() }

// Over reports whether the cache already knows that n units for key cannot fit r at now,
// and the rejection it would return; it never calls the wrapped limiter. Over with an
// invalid rule or n reports false.
func (c *OverLimitCache) Over(key string, r Rule, n int64, now time.Time) (Decision, bool) {
	p, err := r.params()
	if err != nil {
		return Decision{}, false
	}
	t := now.UnixMicro()
	sh := c.shard(key)
	sh.mu.Lock()
	e, ok := sh.entries[cacheKey{key, p}]
	if ok && t >= e.until {
		delete(sh.entries, cacheKey{key, p})
		ok = false
	}
	sh.mu.Unlock()
	if !ok || n < e.n || e.maxWait != int64(r.MaxWait/time.Microsecond) {
		return Decision{}, false
	}
	c.hits.Add(1)
	return Decision{Limit: r.Limit, Remaining: e.remaining, RetryAfter: us(e.until - t), Reset: us(max(e.resetAt-t, 0))}, true
}

// Allow answers from the cache when it can, else asks the wrapped limiter and remembers a
// rejection.
func (c *OverLimitCache) Allow(ctx context.Context, key string, r Rule, n int64, now time.Time) (Decision, error) {
	if d, ok := c.Over(key, r, n, now); ok {
		return d, nil
	}
	d, err := c.inner.Allow(ctx, key, r, n, now)
	if err != nil || d.Allowed || d.RetryAfter <= 0 {
		return d, err
	}
	p, _ := r.params() // valid: the wrapped limiter decided
	t := now.UnixMicro()
	e := overLimit{n: n, until: t + d.RetryAfter.Microseconds(), resetAt: t + d.Reset.Microseconds(), remaining: d.Remaining,
		maxWait: int64(r.MaxWait / time.Microsecond)}
	sh := c.shard(key)
	sh.mu.Lock()
	if len(sh.entries) >= c.max {
		for k, old := range sh.entries {
			if t >= old.until {
				delete(sh.entries, k)
			}
		}
	}
	k := cacheKey{key, p}
	if _, ok := sh.entries[k]; ok || len(sh.entries) < c.max {
		sh.entries[k] = e // replaces an expired one, one of a larger n (n was not over it), or another MaxWait's
	}
	sh.mu.Unlock()
	return d, nil
}

// Adjust calls the wrapped limiter; a refund forgets the key's remembered rejection (under any
// MaxWait: the entry is per key and rule).
func (c *OverLimitCache) Adjust(ctx context.Context, key string, r Rule, delta int64, now time.Time) error {
	if delta < 0 {
		if p, err := r.params(); err == nil {
			sh := c.shard(key)
			sh.mu.Lock()
			delete(sh.entries, cacheKey{key, p})
			sh.mu.Unlock()
		}
	}
	return c.inner.Adjust(ctx, key, r, delta, now)
}

// Acquire calls the wrapped limiter: a concurrency slot frees at no predictable time.
func (c *OverLimitCache) Acquire(ctx context.Context, key string, max int64, now time.Time) (func(), bool, error) {
	return c.inner.Acquire(ctx, key, max, now)
}

// len is the number of remembered rejections.
func (c *OverLimitCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}
