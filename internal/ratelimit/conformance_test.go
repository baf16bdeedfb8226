package ratelimit

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

// The conformance suite: every behaviour runs against every backend, Memory and Redis
// (UseClientClock, so the step tables' fixed instants are the decision times).

// t0 is aligned to every window used here (windows are aligned to the Unix epoch).
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

type backend struct {
	name string
	new  func(t *testing.T) Limiter
}

// backends starts one redis-server for the calling test; each subtest gets its own prefix.
func backends(t *testing.T) []backend {
	t.Helper()
	client := redisserver.Start(t).Client()
	return []backend{
		{"Memory", func(*testing.T) Limiter { return NewMemory(MemoryOptions{}) }},
		{"Redis", func(t *testing.T) Limiter {
			return NewRedis(client, RedisOptions{Prefix: "test:" + t.Name() + ":", UseClientClock: true, Timeout: time.Second})
		}},
	}
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, lim Limiter)) {
	t.Helper()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { f(t, b.new(t)) })
	}
}

// step is one call at t0+at: Allow n units (checking the decision) or Adjust by n.
type step struct {
	at     time.Duration
	n      int64
	adjust bool
	// the expected decision of an Allow
	ok                 bool
	rem                int64
	retry, reset, wait time.Duration
}

func allow(at time.Duration, n int64, ok bool, rem int64, retry, reset time.Duration) step {
	return step{at: at, n: n, ok: ok, rem: rem, retry: retry, reset: reset}
}

// queued is an Allow admitted into a LeakyBucket's queue to wait for its turn.
func queued(at time.Duration, n, rem int64, reset, wait time.Duration) step {
	return step{at: at, n: n, ok: true, rem: rem, reset: reset, wait: wait}
}

func adjust(at time.Duration, delta int64) step { return step{at: at, n: delta, adjust: true} }

func runSteps(t *testing.T, lim Limiter, key string, r Rule, steps []step) {
	t.Helper()
	ctx := context.Background()
	for i, s := range steps {
		now := t0.Add(s.at)
		if s.adjust {
			if err := lim.Adjust(ctx, key, r, s.n, now); err != nil {
				t.Fatalf("step %d: Adjust(%d) at +%v: %v", i, s.n, s.at, err)
			}
			continue
		}
		got, err := lim.Allow(ctx, key, r, s.n, now)
		if err != nil {
			t.Fatalf("step %d: Allow(%d) at +%v: %v", i, s.n, s.at, err)
		}
		want := Decision{Allowed: s.ok, Limit: r.Limit, Remaining: s.rem, RetryAfter: s.retry, Reset: s.reset, Wait: s.wait}
		if got != want {
			t.Errorf("step %d: Allow(%d) at +%v\n got %+v\nwant %+v", i, s.n, s.at, got, want)
		}
	}
}

const (
	ms  = time.Millisecond
	sec = time.Second
)

var stepTables = []struct {
	name  string
	rule  Rule
	steps []step
}{
	{
		// capacity 3, one unit back every 500ms
		name: "TokenBucket",
		rule: Rule{Algorithm: TokenBucket, Limit: 2, Window: sec, Burst: 3},
		steps: []step{
			allow(0, 1, true, 2, 0, 500*ms),
			allow(0, 2, true, 0, 0, 1500*ms),
			allow(0, 1, false, 0, 500*ms, 1500*ms),
			allow(100*ms, 1, false, 0, 400*ms, 1400*ms),
			allow(500*ms, 1, true, 0, 0, 1500*ms),
			allow(500*ms, 4, false, 0, 1500*ms, 1500*ms), // more than Burst: never fits
			allow(10*sec, 0, true, 3, 0, 0),
		},
	},
	{
		// queue of 4 (Burst 0 = Limit) draining 2 per second
		name: "LeakyBucket",
		rule: Rule{Algorithm: LeakyBucket, Limit: 4, Window: 2 * sec},
		steps: []step{
			allow(0, 3, true, 1, 0, 1500*ms),
			allow(0, 2, false, 1, 500*ms, 1500*ms),
			allow(250*ms, 2, false, 1, 250*ms, 1250*ms),
			allow(500*ms, 2, true, 0, 0, 2*sec),
			allow(2500*ms, 4, true, 0, 0, 2*sec),
		},
	},
	{
		// the same bucket as a queue: one request leaves every 500ms, at most 1s of waiting
		name: "LeakyBucket/Queue",
		rule: Rule{Algorithm: LeakyBucket, Limit: 4, Window: 2 * sec, Burst: 3, MaxWait: sec},
		steps: []step{
			allow(0, 1, true, 2, 0, 500*ms),
			queued(0, 1, 1, sec, 500*ms),
			queued(0, 1, 0, 1500*ms, sec),
			allow(0, 1, false, 0, 500*ms, 1500*ms), // no room, and 1.5s to wait
			allow(250*ms, 1, false, 0, 250*ms, 1250*ms),
			queued(500*ms, 1, 0, 1500*ms, sec),
		},
	},
	{
		// room in the bucket, but a wait longer than MaxWait: rejected until it is short enough
		name: "LeakyBucket/MaxWait",
		rule: Rule{Algorithm: LeakyBucket, Limit: 4, Window: 2 * sec, Burst: 3, MaxWait: 600 * ms},
		steps: []step{
			allow(0, 1, true, 2, 0, 500*ms),
			queued(0, 1, 1, sec, 500*ms),
			allow(0, 1, false, 1, 400*ms, sec),
			queued(400*ms, 1, 0, 1100*ms, 600*ms),
		},
	},
	{
		// the exact log of the last minute: 3 per minute, never 4 in any 60s
		name: "SlidingLog",
		rule: Rule{Algorithm: SlidingLog, Limit: 3, Window: time.Minute},
		steps: []step{
			allow(0, 1, true, 2, 0, 60*sec),
			allow(10*sec, 2, true, 0, 0, 60*sec),
			allow(20*sec, 1, false, 0, 40*sec, 50*sec), // until the admission at 0 is 60s old
			allow(59999*ms, 1, false, 0, ms, 10001*ms),
			allow(60*sec, 1, true, 0, 0, 60*sec),
			allow(61*sec, 2, false, 0, 9*sec, 59*sec),  // the two at 10s free room for two
			allow(61*sec, 4, false, 0, 60*sec, 59*sec), // more than Limit: never fits
			allow(130*sec, 0, true, 3, 0, 0),
		},
	},
	{
		// budgets beyond a minute are decided in whole seconds, answered to the µs
		name: "FixedWindow/Hour",
		rule: Rule{Algorithm: FixedWindow, Limit: 2, Window: time.Hour},
		steps: []step{
			allow(0, 1, true, 1, 0, time.Hour),
			allow(30*time.Minute+500*ms, 1, true, 0, 0, 30*time.Minute-500*ms),
			allow(time.Hour-100*ms, 1, false, 0, 100*ms, 100*ms),
			allow(time.Hour, 1, true, 1, 0, time.Hour),
		},
	},
	{
		// a daily budget of 10: at 36h the previous day weighs half, leaving room for 5
		name: "SlidingWindow/Day",
		rule: Rule{Algorithm: SlidingWindow, Limit: 10, Window: 24 * time.Hour},
		steps: []step{
			allow(0, 10, true, 0, 0, 48*time.Hour),
			allow(36*time.Hour+500*ms, 6, false, 5, 8639500*ms, 43199500*ms),
			allow(36*time.Hour+8640*sec, 6, true, 0, 0, 36*time.Hour-8640*sec),
		},
	},
	{
		name: "FixedWindow",
		rule: Rule{Algorithm: FixedWindow, Limit: 3, Window: time.Minute},
		steps: []step{
			allow(0, 1, true, 2, 0, 60*sec),
			allow(10*sec, 2, true, 0, 0, 50*sec),
			allow(20*sec, 1, false, 0, 40*sec, 40*sec),
			allow(59999*ms, 1, false, 0, ms, ms),
			allow(60*sec, 1, true, 2, 0, 60*sec),
			allow(61*sec, 4, false, 2, 60*sec, 59*sec), // more than Limit: never fits
			allow(125*sec, 0, true, 3, 0, 0),
		},
	},
	{
		// 4 per minute; the previous minute weighs (60s-elapsed)/60s
		name: "SlidingWindow",
		rule: Rule{Algorithm: SlidingWindow, Limit: 4, Window: time.Minute},
		steps: []step{
			allow(0, 2, true, 2, 0, 120*sec),
			allow(30*sec, 2, true, 0, 0, 90*sec),
			// full; at 75s the 4 weigh 4×45/60 = 3, leaving room for 1
			allow(45*sec, 1, false, 0, 30*sec, 75*sec),
			allow(75*sec, 1, true, 0, 0, 105*sec),
			allow(90*sec, 1, true, 0, 0, 90*sec),
			// prev 4 weighs 4×29/60, cur 2: two more fit once the weight reaches 0, at 120s
			allow(91*sec, 2, false, 0, 29*sec, 89*sec),
			allow(150*sec, 3, true, 0, 0, 90*sec),
			// prev 2 cannot fall far enough in this window; in the next, cur 3 must weigh ≤ 2: at 200s
			allow(170*sec, 2, false, 0, 30*sec, 70*sec),
			allow(170*sec, 5, false, 0, 70*sec, 70*sec), // more than Limit: never fits
			allow(300*sec, 0, true, 4, 0, 0),
		},
	},
	{
		// sliding window of 4 per minute AND a bucket of 2 refilling one unit every 15s
		name: "Hybrid",
		rule: Rule{Algorithm: Hybrid, Limit: 4, Window: time.Minute, Burst: 2},
		steps: []step{
			allow(0, 2, true, 0, 0, 120*sec),
			allow(0, 1, false, 0, 15*sec, 120*sec), // the bucket is empty; the window is not charged
			allow(15*sec, 1, true, 0, 0, 105*sec),
			allow(45*sec, 1, true, 0, 0, 75*sec),
			allow(50*sec, 1, false, 0, 25*sec, 70*sec), // the bucket has room; the window does not
			allow(75*sec, 2, false, 1, 15*sec, 45*sec),
			allow(90*sec, 2, true, 0, 0, 90*sec),
		},
	},
	{
		name: "TokenBucket/Adjust",
		rule: Rule{Algorithm: TokenBucket, Limit: 10, Window: sec},
		steps: []step{
			allow(0, 4, true, 6, 0, 400*ms),
			adjust(0, 10), // into debt: 14 used of 10
			allow(0, 1, false, 0, 500*ms, 1400*ms),
			adjust(0, -12),
			allow(0, 1, true, 7, 0, 300*ms),
			adjust(100*ms, -100), // refunds stop at a full bucket
			allow(100*ms, 0, true, 10, 0, 0),
		},
	},
	{
		name: "SlidingWindow/Adjust",
		rule: Rule{Algorithm: SlidingWindow, Limit: 10, Window: time.Minute},
		steps: []step{
			allow(0, 3, true, 7, 0, 120*sec),
			adjust(0, 10), // 13 of 10: next minute, 13 must weigh ≤ 9, at 60s + ⌈4×60s/13⌉
			allow(sec, 1, false, 0, 77461539*time.Microsecond, 119*sec),
			adjust(sec, -5),
			allow(sec, 1, true, 1, 0, 119*sec),
			adjust(61*sec, -20), // refunds the previous minute too, stopping at empty
			allow(61*sec, 0, true, 10, 0, 0),
		},
	},
	{
		// a charge logs up to the limit; a refund takes the newest units back
		name: "SlidingLog/Adjust",
		rule: Rule{Algorithm: SlidingLog, Limit: 5, Window: time.Minute},
		steps: []step{
			allow(0, 2, true, 3, 0, 60*sec),
			adjust(0, 10), // 3 logged: the log never holds more than the limit
			allow(sec, 1, false, 0, 59*sec, 59*sec),
			adjust(sec, -4),
			allow(sec, 2, true, 2, 0, 60*sec),
			adjust(61*sec, -100), // refunds stop at an empty log
			allow(61*sec, 0, true, 5, 0, 0),
		},
	},
	{
		name: "FixedWindow/Adjust",
		rule: Rule{Algorithm: FixedWindow, Limit: 5, Window: time.Minute},
		steps: []step{
			allow(0, 2, true, 3, 0, 60*sec),
			adjust(0, 4),
			allow(30*sec, 1, false, 0, 30*sec, 30*sec),
			adjust(30*sec, -3),
			allow(30*sec, 2, true, 0, 0, 30*sec),
		},
	},
	{
		// window 10 per minute, bucket 5 refilling one unit every 6s; Adjust charges both
		name: "Hybrid/Adjust",
		rule: Rule{Algorithm: Hybrid, Limit: 10, Window: time.Minute, Burst: 5},
		steps: []step{
			allow(0, 1, true, 4, 0, 120*sec),
			adjust(0, 4),
			allow(0, 1, false, 0, 6*sec, 120*sec),
			adjust(0, -2),
			allow(0, 1, true, 1, 0, 120*sec),
		},
	},
}

func TestConformance(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range stepTables {
				t.Run(tc.name, func(t *testing.T) {
					runSteps(t, b.new(t), "client-a", tc.rule, tc.steps)
				})
			}
		})
	}
}

func TestConformanceDefaultAlgorithmIsHybrid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, lim Limiter) {
		var hybrid []step
		for _, tc := range stepTables {
			if tc.name == "Hybrid" {
				hybrid = tc.steps
			}
		}
		runSteps(t, lim, "client-a", Rule{Limit: 4, Window: time.Minute, Burst: 2}, hybrid)
	})
}

func TestConformanceRuleChangeIsFreshState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, lim Limiter) {
		ctx := context.Background()
		a := Rule{Algorithm: FixedWindow, Limit: 2, Window: time.Minute}
		b := Rule{Algorithm: FixedWindow, Limit: 3, Window: time.Minute}
		mustAllow(t, lim, "k", a, 2, t0, true)
		mustAllow(t, lim, "k", a, 1, t0, false)
		if d := mustAllow(t, lim, "k", b, 1, t0, true); d.Remaining != 2 {
			t.Errorf("new rule: remaining %d, want 2 (fresh state)", d.Remaining)
		}
		mustAllow(t, lim, "k", a, 1, t0, false) // the old rule's state is kept
		// the same numbers under another algorithm are another rule
		tb := Rule{Algorithm: TokenBucket, Limit: 2, Window: time.Minute}
		lb := Rule{Algorithm: LeakyBucket, Limit: 2, Window: time.Minute}
		mustAllow(t, lim, "k", tb, 2, t0, true)
		mustAllow(t, lim, "k", lb, 2, t0, true)
		if err := lim.Adjust(ctx, "k", a, -2, t0); err != nil { // a refund under a...
			t.Fatal(err)
		}
		mustAllow(t, lim, "k", a, 1, t0, true)
		if d := mustAllow(t, lim, "k", b, 0, t0, true); d.Remaining != 2 { // ...leaves b alone
			t.Errorf("rule b after a refund under a: remaining %d, want 2", d.Remaining)
		}
	})
}

// TestConformanceRuleSpellings: the spellings of one rule share its state (Algorithm "" is
// Hybrid, Burst 0 is Limit, a Window is truncated to whole µs), in either order.
func TestConformanceRuleSpellings(t *testing.T) {
	forEachBackend(t, func(t *testing.T, lim Limiter) {
		spellings := [][]Rule{
			{{Limit: 4, Window: time.Minute}, {Algorithm: Hybrid, Limit: 4, Window: time.Minute, Burst: 4}},
			{{Algorithm: TokenBucket, Limit: 4, Window: sec, Burst: 4}, {Algorithm: TokenBucket, Limit: 4, Window: sec}},
			{{Algorithm: FixedWindow, Limit: 4, Window: sec + 999}, {Algorithm: FixedWindow, Limit: 4, Window: sec}},
		}
		for i, rules := range spellings {
			key := "spelled-" + string(rune('a'+i))
			for j := range 4 {
				mustAllow(t, lim, key, rules[j%2], 1, t0, true)
			}
			mustAllow(t, lim, key, rules[0], 1, t0, false)
			mustAllow(t, lim, key, rules[1], 1, t0, false)
		}
	})
}

func TestConformanceKeyIsolation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, lim Limiter) {
		for _, alg := range []Algorithm{TokenBucket, SlidingWindow, SlidingLog, FixedWindow, LeakyBucket, Hybrid} {
			r := Rule{Algorithm: alg, Limit: 3, Window: time.Minute}
			mustAllow(t, lim, "alice", r, 3, t0, true)
			mustAllow(t, lim, "alice", r, 1, t0, false)
			if d := mustAllow(t, lim, "bob", r, 1, t0, true); d.Remaining != 2 {
				t.Errorf("%s: bob remaining %d, want 2", alg, d.Remaining)
			}
			mustAllow(t, lim, "alice:", r, 1, t0, true) // no key is a prefix of another
		}
	})
}

func TestConformanceInvalid(t *testing.T) {
	ok := Rule{Algorithm: Hybrid, Limit: 10, Window: time.Minute}
	cases := []struct {
		rule  Rule
		field string
	}{
		{Rule{Algorithm: "Leaky", Limit: 1, Window: time.Second}, "rule.algorithm"},
		{Rule{Algorithm: TokenBucket, Limit: 0, Window: time.Second}, "rule.limit must be > 0, got 0"},
		{Rule{Algorithm: TokenBucket, Limit: -3, Window: time.Second}, "rule.limit"},
		{Rule{Algorithm: FixedWindow, Limit: 1}, "rule.window"},
		{Rule{Algorithm: FixedWindow, Limit: 1, Window: time.Microsecond}, "rule.window"},
		{Rule{Algorithm: LeakyBucket, Limit: 1, Window: time.Second, Burst: -1}, "rule.burst"},
		{Rule{Algorithm: SlidingWindow, Limit: 1 << 40, Window: time.Minute}, "rule.limit × rule.window"},
		{Rule{Algorithm: SlidingWindow, Limit: 1 << 40, Window: 24 * time.Hour}, "rule.limit × rule.window"},
		{Rule{Algorithm: Hybrid, Limit: 1, Window: time.Minute, Burst: 1 << 40}, "rule.burst × rule.window"},
		{Rule{Algorithm: SlidingLog, Limit: MaxLogLimit + 1, Window: time.Minute}, "rule.limit must be <= 10000 for SlidingLog"},
		{Rule{Algorithm: FixedWindow, Limit: 1, Window: time.Hour + time.Millisecond}, "whole seconds"},
		{Rule{Algorithm: TokenBucket, Limit: 1, Window: time.Minute, MaxWait: time.Second}, "rule.maxWait applies only to LeakyBucket"},
		{Rule{Algorithm: LeakyBucket, Limit: 1, Window: time.Minute, MaxWait: -time.Second}, "rule.maxWait must be >= 0"},
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid rule: %v", err)
	}
	for _, c := range cases {
		if c.rule.MaxWait != 0 { // MaxWait is checked at each decision, not part of the rule
			continue
		}
		if err := c.rule.Validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Validate(%+v) = %v, want an error naming %q", c.rule, err, c.field)
		}
	}
	forEachBackend(t, func(t *testing.T, lim Limiter) {
		ctx := context.Background()
		for _, c := range cases {
			if _, err := lim.Allow(ctx, "k", c.rule, 1, t0); err == nil || !strings.Contains(err.Error(), c.field) {
				t.Errorf("Allow(%+v) = %v, want an error naming %q", c.rule, err, c.field)
			}
			if c.rule.MaxWait != 0 { // an Adjust does not wait
				continue
			}
			if err := lim.Adjust(ctx, "k", c.rule, 1, t0); err == nil || !strings.Contains(err.Error(), c.field) {
				t.Errorf("Adjust(%+v) = %v, want an error naming %q", c.rule, err, c.field)
			}
		}
		if _, err := lim.Allow(ctx, "k", ok, -1, t0); err == nil {
			t.Error("Allow(n=-1): no error")
		}
		if _, _, err := lim.Acquire(ctx, "k", 0, t0); err == nil {
			t.Error("Acquire(max=0): no error")
		}
	})
}

func TestConformanceAcquire(t *testing.T) {
	forEachBackend(t, func(t *testing.T, lim Limiter) {
		ctx := context.Background()
		acquire := func(key string, want bool) func() {
			t.Helper()
			release, ok, err := lim.Acquire(ctx, key, 2, t0)
			if err != nil || ok != want {
				t.Fatalf("Acquire(%s) = %v, %v; want ok=%v", key, ok, err, want)
			}
			return release
		}
		r1 := acquire("k", true)
		r2 := acquire("k", true)
		acquire("k", false)
		other := acquire("other", true)
		r1()
		r1() // idempotent: frees one slot, not two
		r3 := acquire("k", true)
		acquire("k", false)
		r2()
		r3()
		acquire("k", true)
		acquire("k", true)
		acquire("k", false)
		other()
	})
}

// agreementRules are the rules the random-sequence tests (TestBackendsAgree,
// TestOverLimitCacheAgrees) run: every algorithm, small and large limits, a queue, and windows
// of hours and a day.
var agreementRules = []Rule{
	{Algorithm: TokenBucket, Limit: 7, Window: 3 * sec, Burst: 5},
	{Algorithm: LeakyBucket, Limit: 13, Window: 7 * sec},
	{Algorithm: FixedWindow, Limit: 9, Window: 5 * sec},
	{Algorithm: SlidingWindow, Limit: 11, Window: 4 * sec},
	{Algorithm: Hybrid, Limit: 6, Window: 2 * sec, Burst: 3},
	{Algorithm: Hybrid, Limit: 60000, Window: time.Minute, Burst: 20000},
	{Algorithm: SlidingLog, Limit: 12, Window: 5 * sec},
	{Algorithm: LeakyBucket, Limit: 10, Window: 4 * sec, Burst: 6, MaxWait: 1500 * ms},
	{Algorithm: SlidingWindow, Limit: 40, Window: 3 * time.Hour},
	{Algorithm: TokenBucket, Limit: 30, Window: 24 * time.Hour, Burst: 20},
}

// TestBackendsAgree drives both backends with the same random sequence of Allow and
// Adjust calls and requires identical decisions: the Lua mirror of algo.go is exact.
func TestBackendsAgree(t *testing.T) {
	bs := backends(t)
	ctx := context.Background()
	for _, r := range agreementRules {
		t.Run(ruleName(r), func(t *testing.T) {
			mem, red := bs[0].new(t), bs[1].new(t)
			rng := rand.New(rand.NewPCG(1, uint64(r.Limit)))
			now := t0.Add(time.Duration(rng.Int64N(int64(time.Hour))))
			var allowed, rejected int
			for i := range 2000 {
				if rng.IntN(4) != 0 { // else the same instant again
					now = now.Add(time.Duration(rng.Int64N(int64(r.Window / 4))))
				}
				if rng.IntN(10) == 0 { // now and then a long pause
					now = now.Add(time.Duration(rng.Int64N(int64(3 * r.Window))))
				}
				n := rng.Int64N(r.Limit/3 + 2)
				if rng.IntN(5) == 0 {
					delta := rng.Int64N(2*r.Limit) - r.Limit
					e1, e2 := mem.Adjust(ctx, "k", r, delta, now), red.Adjust(ctx, "k", r, delta, now)
					if e1 != nil || e2 != nil {
						t.Fatalf("op %d: Adjust: %v, %v", i, e1, e2)
					}
					continue
				}
				d1, e1 := mem.Allow(ctx, "k", r, n, now)
				d2, e2 := red.Allow(ctx, "k", r, n, now)
				if e1 != nil || e2 != nil {
					t.Fatalf("op %d: Allow: %v, %v", i, e1, e2)
				}
				if d1 != d2 {
					t.Fatalf("op %d: Allow(%d) at %v: memory %+v, redis %+v", i, n, now.Sub(t0), d1, d2)
				}
				if d1.Allowed {
					allowed++
				} else {
					rejected++
				}
			}
			if allowed < 50 || rejected < 50 {
				t.Errorf("the sequence exercised too little: %d allowed, %d rejected", allowed, rejected)
			}
			t.Logf("%d allowed, %d rejected, identical on both backends", allowed, rejected)
		})
	}
}

// ruleName names a rule's subtest: its algorithm, window and MaxWait.
func ruleName(r Rule) string {
	name := string(r.Algorithm) + "/" + r.Window.String()
	if r.MaxWait > 0 {
		name += "/queue"
	}
	return name
}

func mustAllow(t *testing.T, lim Limiter, key string, r Rule, n int64, now time.Time, want bool) Decision {
	t.Helper()
	d, err := lim.Allow(context.Background(), key, r, n, now)
	if err != nil {
		t.Fatalf("Allow(%s, %d): %v", key, n, err)
	}
	if d.Allowed != want {
		t.Fatalf("Allow(%s, %+v, %d) = %+v, want Allowed=%v", key, r, n, d, want)
	}
	return d
}
