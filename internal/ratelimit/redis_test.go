package ratelimit

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

// TestRedisNoScriptRecovery: after SCRIPT FLUSH (a restart or failover loses the script
// cache) the next decision reloads the script and keeps the state.
func TestRedisNoScriptRecovery(t *testing.T) {
	ctx := context.Background()
	c := redisserver.Start(t).Client()
	lim := NewRedis(c, RedisOptions{UseClientClock: true})
	r := Rule{Algorithm: Hybrid, Limit: 5, Window: time.Minute}
	mustAllow(t, lim, "k", r, 1, t0, true)
	if _, ok, err := lim.Acquire(ctx, "k", 1, t0); !ok || err != nil {
		t.Fatalf("Acquire: %v, %v", ok, err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if loaded := scriptsLoaded(t, c); loaded[0] || loaded[1] {
		t.Fatalf("scripts still loaded after SCRIPT FLUSH: %v", loaded)
	}
	if d := mustAllow(t, lim, "k", r, 1, t0, true); d.Remaining != 3 {
		t.Errorf("after SCRIPT FLUSH: remaining %d, want 3 (state kept)", d.Remaining)
	}
	if _, ok, err := lim.Acquire(ctx, "k", 1, t0); ok || err != nil {
		t.Errorf("Acquire after SCRIPT FLUSH = %v, %v; want false, nil (slot still held)", ok, err)
	}
	if loaded := scriptsLoaded(t, c); !loaded[0] || !loaded[1] {
		t.Errorf("scripts not reloaded: %v", loaded)
	}
}

func scriptsLoaded(t *testing.T, c redis.UniversalClient) []bool {
	t.Helper()
	loaded, err := c.ScriptExists(context.Background(), decideScript.Hash(), acquireScript.Hash()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return loaded
}

// TestRedisKeysExpire: every key the limiter writes carries an expiry no later than the
// state's Reset (the lease set: LeaseTTL), and a state refunded to empty is deleted.
func TestRedisKeysExpire(t *testing.T) {
	ctx := context.Background()
	c := redisserver.Start(t).Client()
	lim := NewRedis(c, RedisOptions{Prefix: "exp:", LeaseTTL: time.Minute}) // server clock
	resets := map[string]time.Duration{}
	for _, alg := range allAlgorithms {
		r := Rule{Algorithm: alg, Limit: 10, Window: time.Minute}
		d := mustAllow(t, lim, "k", r, 3, time.Time{}, true)
		resets[lim.stateKey("k", mustParams(t, r))] = d.Reset
	}
	if _, ok, err := lim.Acquire(ctx, "k", 2, time.Time{}); !ok || err != nil {
		t.Fatalf("Acquire: %v, %v", ok, err)
	}
	resets["exp:cc:k"] = time.Minute
	keys, err := c.Keys(ctx, "exp:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(resets) {
		t.Errorf("keys %v, want one per algorithm and the lease set", keys)
	}
	for _, k := range keys {
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if reset, ok := resets[k]; !ok || ttl <= 0 || ttl > reset+2*time.Millisecond {
			t.Errorf("key %s: PTTL %v, want in (0, %v]", k, ttl, reset+2*time.Millisecond)
		}
	}
	r := Rule{Algorithm: TokenBucket, Limit: 10, Window: time.Minute}
	if err := lim.Adjust(ctx, "k", r, -3, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Exists(ctx, lim.stateKey("k", mustParams(t, r))).Result(); n != 0 {
		t.Error("a state refunded to full was not deleted")
	}
}

func mustParams(t *testing.T, r Rule) *params {
	t.Helper()
	p, err := r.params()
	if err != nil {
		t.Fatal(err)
	}
	return &p
}

// TestRedisServerClock: by default the script decides at the server's TIME, whatever now says.
func TestRedisServerClock(t *testing.T) {
	ctx := context.Background()
	c := redisserver.Start(t).Client()
	lim := NewRedis(c, RedisOptions{})
	r := Rule{Algorithm: FixedWindow, Limit: 2, Window: time.Hour}
	before, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	d := mustAllow(t, lim, "k", r, 1, time.Time{}, true) // the zero time would be year 1
	after, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// the window ends at the next full hour of the server's clock
	end := after.Truncate(time.Hour).Add(time.Hour)
	if lo, hi := end.Sub(after), end.Sub(before); d.Reset < lo || d.Reset > hi {
		t.Errorf("Reset %v, want within [%v, %v] (the server's hour)", d.Reset, lo, hi)
	}
}

// TestRedisLeaseExpiry: a slot never released (a crashed gateway) frees itself after LeaseTTL.
func TestRedisLeaseExpiry(t *testing.T) {
	ctx := context.Background()
	lim := NewRedis(redisserver.Start(t).Client(), RedisOptions{UseClientClock: true, LeaseTTL: time.Second})
	acquire := func(at time.Duration, want bool) {
		t.Helper()
		if _, ok, err := lim.Acquire(ctx, "k", 1, t0.Add(at)); ok != want || err != nil {
			t.Fatalf("Acquire at +%v = %v, %v; want %v", at, ok, err, want)
		}
	}
	acquire(0, true) // never released
	acquire(999*time.Millisecond, false)
	acquire(time.Second, true)
}

// ciSlack is what a wall-clock bound in a test allows beyond the time it bounds: far more than
// a starved CPU delays a goroutine, far less than a missing bound costs.
const ciSlack = time.Second

// TestRedisTimeout: with the server down or hung, every call returns an error within
// Timeout (plus ciSlack of scheduling); when it is back, decisions work again.
func TestRedisTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	ctx := context.Background()
	srv := redisserver.Start(t)
	lim := NewRedis(srv.Client(), RedisOptions{Timeout: timeout})
	r := Rule{Algorithm: Hybrid, Limit: 100, Window: time.Minute}
	calls := map[string]func() error{
		"Allow": func() error { _, err := lim.Allow(ctx, "k", r, 1, time.Time{}); return err },
		"Adjust": func() error {
			return lim.Adjust(ctx, "k", r, 1, time.Time{})
		},
		"Acquire": func() error { _, _, err := lim.Acquire(ctx, "k", 5, time.Time{}); return err },
	}
	// Each call is tried 3 times and none may take longer than Timeout + 1s. A missing bound
	// (the client's 3s ReadTimeout, retry backoff ignoring the context) fails every try; the
	// second of slack is for a CPU starved by other processes (a busy 2-core CI machine once
	// took 65ms for a 50ms timeout), never a reason for a try to fail.
	check := func(outage string) {
		t.Helper()
		for name, call := range calls {
			var took [3]time.Duration
			for i := range took {
				start := time.Now()
				err := call()
				took[i] = time.Since(start)
				if err == nil {
					t.Errorf("%s while %s: no error", name, outage)
				}
			}
			slices.Sort(took[:])
			t.Logf("%s while %s: errors after %v", name, outage, took)
			if took[2] > timeout+ciSlack {
				t.Errorf("%s while %s: returned after %v, want all <= %v", name, outage, took, timeout+ciSlack)
			}
		}
	}
	mustAllow(t, lim, "k", r, 1, time.Time{}, true)

	srv.Pause()
	check("paused")
	srv.Resume()
	mustAllow(t, lim, "k", r, 1, time.Time{}, true)

	srv.Stop()
	check("stopped")
	srv.Restart() // empty: the scripts must be loaded again
	if d := mustAllow(t, lim, "k", r, 1, time.Time{}, true); d.Remaining != 99 {
		t.Errorf("after restart: remaining %d, want 99 (a fresh server)", d.Remaining)
	}
}

// TestRedisConcurrentAccuracy: 4 limiters with their own clients hammer one key from 64
// goroutines. At one instant every algorithm admits exactly Limit; on the server's clock
// the sliding window admits at most Limit and at least 99% of it, and the token bucket
// exactly Limit plus what it refilled meanwhile.
func TestRedisConcurrentAccuracy(t *testing.T) {
	srv := redisserver.Start(t)
	const limit = 1000
	type run struct {
		alg         Algorithm
		serverClock bool
	}
	runs := []run{{SlidingWindow, true}, {TokenBucket, true}}
	for _, alg := range allAlgorithms {
		runs = append(runs, run{alg, false})
	}
	for i, rn := range runs {
		name := string(rn.alg) + "/ClientClock"
		if rn.serverClock {
			name = string(rn.alg) + "/ServerClock"
		}
		t.Run(name, func(t *testing.T) {
			var lims []*Redis
			for range 4 {
				lims = append(lims, NewRedis(srv.Client(), RedisOptions{
					Prefix: "acc:" + strconv.Itoa(i) + ":", UseClientClock: !rn.serverClock, Timeout: 5 * time.Second}))
			}
			r := Rule{Algorithm: rn.alg, Limit: limit, Window: time.Hour}
			now := t0.Add(1234 * time.Second)
			start := time.Now()
			admitted := hammer(t, 64, 3*limit, func(i int) (bool, error) {
				d, err := lims[i%4].Allow(context.Background(), "hot", r, 1, now)
				return d.Allowed, err
			})
			elapsed := time.Since(start)
			lo, hi := int64(limit), int64(limit)
			switch {
			case rn.alg == SlidingWindow && rn.serverClock:
				lo = limit * 99 / 100
			case rn.serverClock: // refill of limit per hour during the run
				hi += int64(elapsed*limit/time.Hour) + 1
			}
			t.Logf("admitted %d of %d attempts in %v", admitted, 3*limit, elapsed)
			if admitted < lo || admitted > hi {
				t.Errorf("admitted %d, want in [%d, %d]", admitted, lo, hi)
			}
		})
	}
}
