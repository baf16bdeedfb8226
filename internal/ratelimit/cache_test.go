package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// countingLimiter counts the calls that reach the limiter it wraps.
type countingLimiter struct {
	Limiter
	allows, adjusts int
}

func (c *countingLimiter) Allow(ctx context.Context, key string, r Rule, n int64, now time.Time) (Decision, error) {
	c.allows++
	return c.Limiter.Allow(ctx, key, r, n, now)
}

func (c *countingLimiter) Adjust(ctx context.Context, key string, r Rule, delta int64, now time.Time) error {
	c.adjusts++
	return c.Limiter.Adjust(ctx, key, r, delta, now)
}

// TestOverLimitCacheAgrees drives a plain limiter and a cached one (each on its own Memory)
// with the same random sequence and requires the same Allowed on every call: the cache
// never rejects what the limiter would admit, which holds only if every RetryAfter is the
// exact earliest instant (never later). Where the cache answers, its RetryAfter is at most the
// limiter's. It also asks the limiter far less.
func TestOverLimitCacheAgrees(t *testing.T) {
	ctx := context.Background()
	for _, r := range agreementRules {
		t.Run(ruleName(r), func(t *testing.T) {
			plain := NewMemory(MemoryOptions{})
			inner := &countingLimiter{Limiter: NewMemory(MemoryOptions{})}
			cached := NewOverLimitCache(inner, OverLimitCacheOptions{})
			rng := rand.New(rand.NewPCG(3, uint64(r.Limit)))
			now := t0.Add(time.Duration(rng.Int64N(int64(time.Hour))))
			var calls, rejected, hits int
			for i := range 20_000 {
				if rng.IntN(3) == 0 { // else the same instant again: a flood
					now = now.Add(time.Duration(rng.Int64N(int64(r.Window / 50))))
				}
				if rng.IntN(200) == 0 {
					now = now.Add(time.Duration(rng.Int64N(int64(2 * r.Window))))
				}
				if rng.IntN(50) == 0 {
					delta := rng.Int64N(r.Limit) - r.Limit/2
					if err := plain.Adjust(ctx, "k", r, delta, now); err != nil {
						t.Fatal(err)
					}
					if err := cached.Adjust(ctx, "k", r, delta, now); err != nil {
						t.Fatal(err)
					}
					continue
				}
				n := 1 + rng.Int64N(r.Limit/4+1)
				if rng.IntN(100) == 0 {
					n = r.Limit + 1 // never fits
				}
				rr := r
				if r.MaxWait > 0 && rng.IntN(2) == 0 { // another MaxWait, the same state
					rr.MaxWait = 700 * ms
				}
				before := cached.Hits()
				want, err1 := plain.Allow(ctx, "k", rr, n, now)
				got, err2 := cached.Allow(ctx, "k", rr, n, now)
				if err1 != nil || err2 != nil {
					t.Fatalf("op %d: %v, %v", i, err1, err2)
				}
				calls++
				if got.Allowed != want.Allowed {
					t.Fatalf("op %d: Allow(%d) at %v: cached %+v, limiter %+v", i, n, now.Sub(t0), got, want)
				}
				if !want.Allowed {
					rejected++
				}
				if cached.Hits() > before {
					hits++
					if got.RetryAfter > want.RetryAfter || got.RetryAfter <= 0 {
						t.Fatalf("op %d: cached rejection %+v, limiter's %+v", i, got, want)
					}
				} else if got != want {
					t.Fatalf("op %d: passed through %+v, limiter %+v", i, got, want)
				}
			}
			minHits := rejected / 2
			if r.MaxWait > 0 { // two MaxWaits take turns in one entry
				minHits = rejected / 4
			}
			if rejected < calls/4 || hits < minHits || calls-rejected < 200 {
				t.Errorf("the sequence exercised too little: %d calls, %d rejected, %d answered by the cache", calls, rejected, hits)
			}
			if inner.allows+hits != calls {
				t.Errorf("%d calls reached the limiter and %d the cache, of %d", inner.allows, hits, calls)
			}
			t.Logf("%d decisions, %d rejected, %d of them by the cache alone", calls, rejected, hits)
		})
	}
}

// TestOverLimitCacheFlood: a key over its limit costs one call of the wrapped limiter per
// RetryAfter, however many requests come; other keys, and other rules of the key, are not
// affected; a refund through the cache forgets the rejection.
func TestOverLimitCacheFlood(t *testing.T) {
	ctx := context.Background()
	inner := &countingLimiter{Limiter: NewMemory(MemoryOptions{})}
	c := NewOverLimitCache(inner, OverLimitCacheOptions{})
	r := Rule{Algorithm: FixedWindow, Limit: 3, Window: time.Minute}
	for i := range 3 {
		mustAllow(t, c, "abuser", r, 1, t0, true)
		_ = i
	}
	d := mustAllow(t, c, "abuser", r, 1, t0, false)
	if d.RetryAfter != time.Minute {
		t.Fatalf("RetryAfter %v, want 1m", d.RetryAfter)
	}
	for i := range 10_000 {
		at := t0.Add(time.Duration(i) * 5 * time.Millisecond) // 50 s of flood
		if d := mustAllow(t, c, "abuser", r, 1, at, false); d.RetryAfter != time.Minute-at.Sub(t0) || d.Reset != d.RetryAfter {
			t.Fatalf("flood %d: %+v", i, d)
		}
	}
	if inner.allows != 4 || c.Hits() != 10_000 {
		t.Errorf("%d calls reached the limiter, %d hits; want 4 and 10000", inner.allows, c.Hits())
	}
	mustAllow(t, c, "other", r, 1, t0, true)
	mustAllow(t, c, "abuser", Rule{Algorithm: FixedWindow, Limit: 4, Window: time.Minute}, 1, t0, true)
	mustAllow(t, c, "abuser", r, 1, t0.Add(time.Minute), true) // the window turned: asked again
	mustAllow(t, c, "abuser", r, 2, t0.Add(time.Minute), true)
	mustAllow(t, c, "abuser", r, 1, t0.Add(time.Minute), false)
	if err := c.Adjust(ctx, "abuser", r, -1, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	mustAllow(t, c, "abuser", r, 1, t0.Add(time.Minute), true)
	if c.len() != 0 { // the last rejection was forgotten by the refund, and not renewed
		t.Errorf("%d entries remembered", c.len())
	}
}

// TestOverLimitCacheBounded: past MaxKeys, rejections are not remembered (expired ones make
// room); decisions stay right either way.
func TestOverLimitCacheBounded(t *testing.T) {
	inner := &countingLimiter{Limiter: NewMemory(MemoryOptions{})}
	c := NewOverLimitCache(inner, OverLimitCacheOptions{MaxKeys: 160})
	r := Rule{Algorithm: FixedWindow, Limit: 1, Window: time.Second}
	for i := range 1000 {
		k := fmt.Sprint("k", i)
		mustAllow(t, c, k, r, 1, t0, true)
		mustAllow(t, c, k, r, 1, t0, false)
	}
	if n := c.len(); n > 160 {
		t.Errorf("%d entries remembered, want <= 160", n)
	}
	later := t0.Add(time.Second)
	for i := range 1000 {
		k := fmt.Sprint("n", i)
		mustAllow(t, c, k, r, 1, later, true)
		mustAllow(t, c, k, r, 1, later, false)
	}
	if n := c.len(); n < 100 || n > 160 {
		t.Errorf("%d entries remembered after the first ones expired, want 100..160", n)
	}
}
