// Package ratelimit decides whether a request fits a rate limit: six algorithms behind one
// Limiter interface, kept in process (Memory) or shared by every gateway replica (Redis).
//
// Decisions take the time as an argument and are exact integer arithmetic on ticks: a
// microsecond for windows up to a minute (a Window is truncated to whole µs), a second for
// longer ones (hourly and daily budgets; such a Window must be whole seconds). Both backends
// give identical answers for identical inputs (one conformance suite checks that). State is
// kept per (key, rule): a configuration reload that leaves a key's rule unchanged keeps its
// state, and a changed rule starts afresh.
//
// For every algorithm, max(Limit, Burst) × Window (in ticks) must stay at or below 2^50 so
// that the Redis scripts, which compute in doubles, stay exact: up to about 18 million units
// per minute, 312 billion per hour or 13 billion per day. SlidingLog keeps one entry per
// admission and takes at most MaxLogLimit units per window.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"time"
)

// Algorithm names a limiting algorithm.
type Algorithm string

// The algorithms. The empty Algorithm means Hybrid.
const (
	// TokenBucket holds up to Burst units and refills Limit units per Window continuously.
	TokenBucket Algorithm = "TokenBucket"
	// SlidingWindow is a sliding-window counter: Limit units per Window, where the previous
	// aligned window's count is weighted by the part of it the sliding window still covers.
	// It is an estimate, not a count of the last Window: within one aligned window it never
	// admits more than Limit, but across a window boundary it assumes the previous window's
	// units were spread evenly, so traffic bunched at the end of a window can see up to
	// 2×Limit−1 in one sliding interval (59 for 30 per minute; Hybrid bounds that burst).
	SlidingWindow Algorithm = "SlidingWindow"
	// SlidingLog is the exact log of the admissions of the last Window: n units are admitted
	// when the units admitted in (now−Window, now] plus n are at most Limit, so no span of
	// Window ever holds more than Limit. It keeps one entry per admission (at most Limit, and
	// Limit is at most MaxLogLimit): in memory 16 bytes per entry, in Redis a sorted-set
	// member per unit scored by its admission time, as the Redis + Lua sliding window is
	// usually written, with a unique member per unit.
	SlidingLog Algorithm = "SlidingLog"
	// FixedWindow counts units per aligned window (aligned to the Unix epoch). At most Limit
	// in each aligned window, so up to 2×Limit in a span that straddles two; this is what
	// slowapi's (the limits library's) "30/minute" does.
	FixedWindow Algorithm = "FixedWindow"
	// LeakyBucket is a queue of Burst units draining at Limit per Window: n units are
	// admitted when level+n <= Burst. With MaxWait 0 it is a meter (the admitted units pass at
	// once; its decisions equal a TokenBucket's, its state kept apart). With MaxWait > 0 it
	// queues: admitted units leave the bucket one by one at the drain rate, so a decision's
	// Wait is the time until the units already in the bucket have drained, and a request
	// whose Wait would exceed MaxWait is rejected.
	LeakyBucket Algorithm = "LeakyBucket"
	// Hybrid admits only when both a SlidingWindow of Limit per Window and a TokenBucket of
	// capacity Burst refilling Limit per Window admit, and then consumes from both.
	Hybrid Algorithm = "Hybrid"
)

// Rule is one limit: Limit units per Window. Burst is the bucket capacity for TokenBucket,
// Hybrid (its token-bucket half) and LeakyBucket (queue size); 0 means Limit. MaxWait, for
// LeakyBucket only, is how long an admitted request may wait for its turn (0: a meter, no
// waiting); it is not part of the state's identity: a rule that changes only MaxWait keeps
// its state.
type Rule struct {
	Algorithm Algorithm
	Limit     int64
	Window    time.Duration
	Burst     int64
	MaxWait   time.Duration
}

// maxScaled bounds every product of units and window ticks, and every stored number, so
// that the Lua scripts (IEEE doubles) compute exactly what the Go code does.
const maxScaled = 1 << 50

// MaxLogLimit is the largest Limit a SlidingLog takes: it keeps an entry per admission.
const MaxLogLimit = 10_000

// longTick is the tick of windows longer than a minute: a second.
const longTick = int64(time.Second / time.Microsecond)

// Validate reports the first invalid field of r, naming it.
func (r Rule) Validate() error {
	_, err := r.params()
	return err
}

// algorithm codes; also the Redis key and script tags.
type algCode uint8

const (
	algHybrid algCode = iota
	algToken
	algSliding
	algFixed
	algLeaky
	algLog
)

var algTags = [...]string{algHybrid: "hy", algToken: "tb", algSliding: "sw", algFixed: "fw", algLeaky: "lb", algLog: "sl"}

func (a algCode) tag() string { return algTags[a] }
func (a algCode) window() bool {
	return a == algHybrid || a == algSliding || a == algFixed
}
func (a algCode) bucket() bool { return a == algHybrid || a == algToken || a == algLeaky }

// params is a validated Rule in the units the algorithms use; it is comparable, and with
// the key it identifies a state.
type params struct {
	limit  int64 // units per window
	window int64 // ticks
	burst  int64 // bucket capacity in units (Burst, or Limit when 0)
	tick   int64 // µs per tick: 1, or longTick for windows longer than a minute
	alg    algCode
	// whether alg has a window part and a bucket part (alg.window(), alg.bucket())
	hasWindow, hasBucket bool
}

var algNames = [...]Algorithm{algHybrid: Hybrid, algToken: TokenBucket, algSliding: SlidingWindow, algFixed: FixedWindow, algLeaky: LeakyBucket, algLog: SlidingLog}

// spelledBy reports whether r validates to p, without validating r: a state found by its key
// and this check needs no validation. It may report false for a spelling of p (a Window that
// is not a whole number of µs), never true for another rule or an invalid one. r.MaxWait is
// not part of p: the caller checks it (see waitTicks).
func (p *params) spelledBy(r *Rule) bool {
	return r.Limit == p.limit && int64(r.Window) == p.window*p.tick*int64(time.Microsecond) &&
		(r.Burst == p.burst || r.Burst == 0 && p.burst == p.limit) &&
		(r.Algorithm == algNames[p.alg] || r.Algorithm == "" && p.alg == algHybrid)
}

// waitTicks validates r.MaxWait for p and returns it in ticks (rounded down).
func (p *params) waitTicks(r *Rule) (int64, error) {
	switch {
	case r.MaxWait == 0:
		return 0, nil
	case r.MaxWait < 0:
		return 0, fmt.Errorf("ratelimit: rule.maxWait must be >= 0, got %s", r.MaxWait)
	case p.alg != algLeaky:
		return 0, fmt.Errorf("ratelimit: rule.maxWait applies only to LeakyBucket, not %s", algNames[p.alg])
	case r.MaxWait > 24*time.Hour:
		return 0, fmt.Errorf("ratelimit: rule.maxWait must be at most 24h, got %s", r.MaxWait)
	}
	return r.MaxWait.Microseconds() / p.tick, nil
}

// ticks splits a time in µs into whole ticks and the µs past the last one.
func (p *params) ticks(us int64) (t, off int64) {
	if p.tick == 1 {
		return us, 0
	}
	t = us / p.tick
	if us%p.tick < 0 {
		t--
	}
	return t, us - t*p.tick
}

func (r Rule) params() (params, error) {
	var p params
	switch r.Algorithm {
	case Hybrid, "":
		p.alg = algHybrid
	case TokenBucket:
		p.alg = algToken
	case SlidingWindow:
		p.alg = algSliding
	case FixedWindow:
		p.alg = algFixed
	case LeakyBucket:
		p.alg = algLeaky
	case SlidingLog:
		p.alg = algLog
	default:
		return p, fmt.Errorf("ratelimit: rule.algorithm must be one of TokenBucket, SlidingWindow, SlidingLog, FixedWindow, LeakyBucket, Hybrid, got %q", r.Algorithm)
	}
	if r.Limit <= 0 {
		return p, fmt.Errorf("ratelimit: rule.limit must be > 0, got %d", r.Limit)
	}
	if r.Window < time.Millisecond {
		return p, fmt.Errorf("ratelimit: rule.window must be >= 1ms, got %s", r.Window)
	}
	if r.Burst < 0 {
		return p, fmt.Errorf("ratelimit: rule.burst must be >= 0, got %d", r.Burst)
	}
	p.limit, p.window, p.burst, p.tick = r.Limit, r.Window.Microseconds(), r.Burst, 1
	if r.Window > time.Minute {
		if r.Window%time.Second != 0 {
			return p, fmt.Errorf("ratelimit: rule.window longer than a minute must be whole seconds, got %s", r.Window)
		}
		p.window, p.tick = p.window/longTick, longTick
	}
	p.hasWindow, p.hasBucket = p.alg.window(), p.alg.bucket()
	if p.burst == 0 {
		p.burst = p.limit
	}
	if tooBig(p.limit, p.window) {
		return p, fmt.Errorf("ratelimit: rule.limit × rule.window must be <= 2^50 unit·tick, got %d per %s; use a shorter window", r.Limit, r.Window)
	}
	if tooBig(p.burst, p.window) {
		return p, fmt.Errorf("ratelimit: rule.burst × rule.window must be <= 2^50 unit·tick, got %d per %s", r.Burst, r.Window)
	}
	if p.alg == algLog && p.limit > MaxLogLimit {
		return p, fmt.Errorf("ratelimit: rule.limit must be <= %d for SlidingLog (one entry per admission), got %d", MaxLogLimit, r.Limit)
	}
	return p, nil
}

func tooBig(a, b int64) bool {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	return hi != 0 || lo > maxScaled
}

// Decision is the outcome of Allow.
type Decision struct {
	// Allowed is true when the units fit and were consumed.
	Allowed bool
	// Limit is the rule's Limit; Remaining is how many units would still fit now.
	Limit, Remaining int64
	// RetryAfter is >0 when rejected: the earliest time the same request could pass if no
	// other traffic arrives. A request larger than the rule's capacity never passes; its
	// RetryAfter is then the longer of Reset and the Window.
	RetryAfter time.Duration
	// Wait is >0 when admitted into a LeakyBucket's queue (Rule.MaxWait > 0): how long the
	// request waits for its turn (the units ahead of it to drain) before it may go on.
	Wait time.Duration
	// Reset is the time until the limit is fully replenished (for RateLimit headers).
	Reset time.Duration
}

// Limiter is implemented by *Memory and *Redis. State is kept per (key, rule).
//
// A key is any string; a key of the form "quota:client" (split at the first ':', both sides
// non-empty) names one quota of one client, and Redis keeps every key of one client in one
// Redis Cluster hash slot (the client is the hash tag), so the concurrency leases and the
// rate states of a client live together on one node.
type Limiter interface {
	// Allow decides whether n units for key fit r at now, consuming them only if allowed.
	Allow(ctx context.Context, key string, r Rule, n int64, now time.Time) (Decision, error)
	// Adjust charges (delta>0) or refunds (delta<0) units without a decision: used to true up
	// token-per-minute estimates from the response's usage. Charges may drive the state into debt.
	Adjust(ctx context.Context, key string, r Rule, delta int64, now time.Time) error
	// Acquire takes one of max concurrent slots for key; ok=false when all are taken.
	// release must be called exactly once when ok; it is idempotent-safe.
	Acquire(ctx context.Context, key string, max int64, now time.Time) (release func(), ok bool, err error)
}

var (
	errNegativeN   = errors.New("ratelimit: n must be >= 0")
	errNonPositive = errors.New("ratelimit: max must be > 0")
)

func us(x int64) time.Duration { return time.Duration(x) * time.Microsecond }

func (o outcome) decision(limit int64) Decision {
	return Decision{Allowed: o.ok, Limit: limit, Remaining: o.remaining, RetryAfter: us(o.retry), Reset: us(o.reset), Wait: us(o.wait)}
}

// inMicros converts an outcome's durations from ticks to µs from the decision's instant, off
// µs past its tick: a time that is k ticks after the tick is k×tick−off µs after the instant.
func (o outcome) inMicros(p *params, off int64) outcome {
	if p.tick == 1 {
		return o
	}
	conv := func(x int64) int64 {
		if x <= 0 {
			return 0
		}
		return x*p.tick - off
	}
	o.retry, o.reset, o.wait = conv(o.retry), conv(o.reset), conv(o.wait)
	return o
}
