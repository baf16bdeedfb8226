package ratelimit

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

// TestRedisNoScriptRecovery: after SCRIPT FLUSH (a restart or failover loses the script
// cache) the next decision reloads the script and keeps the state.
func TestRedisNoScriptRecovery(t *testing.T) {
	ctx := context.Background()
	srv := redisserver.Start(t)
	lim := NewRedis(srv.Client(), RedisOptions{UseClientClock: true})
	r := Rule{Algorithm: Hybrid, Limit: 5, Window: time.Minute}
	mustAllow(t, lim, "k", r, 1, t0, true)
	if _, ok, err := lim.Acquire(ctx, "k", 1, t0); !ok || err != nil {
		t.Fatalf("Acquire: %v, %v", ok, err)
	}
	srv.MustDo("SCRIPT", "FLUSH")
	if loaded := scriptsLoaded(t, srv); loaded[0] || loaded[1] {
		t.Fatalf("scripts still loaded after SCRIPT FLUSH: %v", loaded)
	}
	if d := mustAllow(t, lim, "k", r, 1, t0, true); d.Remaining != 3 {
		t.Errorf("after SCRIPT FLUSH: remaining %d, want 3 (state kept)", d.Remaining)
	}
	if _, ok, err := lim.Acquire(ctx, "k", 1, t0); ok || err != nil {
		t.Errorf("Acquire after SCRIPT FLUSH = %v, %v; want false, nil (slot still held)", ok, err)
	}
	if loaded := scriptsLoaded(t, srv); !loaded[0] || !loaded[1] {
		t.Errorf("scripts not reloaded: %v", loaded)
	}
}

func scriptsLoaded(t *testing.T, srv *redisserver.Server) []bool {
	t.Helper()
	m := srv.MustDo("SCRIPT", "EXISTS", sha1hex(decideSrc), sha1hex(acquireSrc))
	flags, err := m.AsIntSlice()
	if err != nil {
		t.Fatal(err)
	}
	return []bool{flags[0] == 1, flags[1] == 1}
}

func sha1hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// do runs one command on c and fails the test on error.
func do(t *testing.T, c rueidis.Client, args ...string) rueidis.RedisMessage {
	t.Helper()
	m, err := c.Do(context.Background(), c.B().Arbitrary(args...).Build()).ToMessage()
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return m
}

// TestRedisKeysExpire: every key the limiter writes carries an expiry no later than the
// state's Reset (the lease set: LeaseTTL), and a state refunded to empty is deleted.
func TestRedisKeysExpire(t *testing.T) {
	ctx := context.Background()
	srv := redisserver.Start(t)
	lim := NewRedis(srv.Client(), RedisOptions{Prefix: "exp:", LeaseTTL: time.Minute}) // server clock
	resets := map[string]time.Duration{}
	for _, alg := range allAlgorithms {
		r := Rule{Algorithm: alg, Limit: 10, Window: time.Minute}
		d := mustAllow(t, lim, "k", r, 3, time.Time{}, true)
		resets[lim.stateKey("k", mustParams(t, r))] = d.Reset
	}
	if _, ok, err := lim.Acquire(ctx, "k", 2, time.Time{}); !ok || err != nil {
		t.Fatalf("Acquire: %v, %v", ok, err)
	}
	resets[lim.leaseKey("k")] = time.Minute
	m := srv.MustDo("KEYS", "exp:*")
	keys, err := m.AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(resets) {
		t.Errorf("keys %v, want one per algorithm and the lease set", keys)
	}
	for _, k := range keys {
		m := srv.MustDo("PTTL", k)
		ms, err := m.AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		ttl := time.Duration(ms) * time.Millisecond
		if reset, ok := resets[k]; !ok || ttl <= 0 || ttl > reset+2*time.Millisecond {
			t.Errorf("key %s: PTTL %v, want in (0, %v]", k, ttl, reset+2*time.Millisecond)
		}
	}
	r := Rule{Algorithm: TokenBucket, Limit: 10, Window: time.Minute}
	if err := lim.Adjust(ctx, "k", r, -3, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if m := srv.MustDo("EXISTS", lim.stateKey("k", mustParams(t, r))); mustInt(t, m) != 0 {
		t.Error("a state refunded to full was not deleted")
	}
}

// TestRedisSlidingLogUniqueMembers: two gateways admitting at the same instant on the server's
// clock log two entries, not one: a member named by its timestamp (as the Redis + Lua sliding
// window is often written) would let the second overwrite the first and a third one in.
func TestRedisSlidingLogUniqueMembers(t *testing.T) {
	srv := redisserver.Start(t)
	a := NewRedis(srv.Client(), RedisOptions{Prefix: "log:", UseClientClock: true})
	b := NewRedis(srv.Client(), RedisOptions{Prefix: "log:", UseClientClock: true})
	r := Rule{Algorithm: SlidingLog, Limit: 2, Window: time.Minute}
	mustAllow(t, a, "k", r, 1, t0, true)
	mustAllow(t, b, "k", r, 1, t0, true)
	mustAllow(t, a, "k", r, 1, t0, false)
	if n := mustInt(t, srv.MustDo("ZCARD", a.stateKey("k", mustParams(t, r)))); n != 2 {
		t.Errorf("the log holds %d members, want 2", n)
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
	c := redisserver.Start(t).Client()
	lim := NewRedis(c, RedisOptions{})
	r := Rule{Algorithm: FixedWindow, Limit: 2, Window: time.Hour}
	before := serverTime(t, c)
	d := mustAllow(t, lim, "k", r, 1, time.Time{}, true) // the zero time would be year 1
	after := serverTime(t, c)
	// the window ends at the next full hour of the server's clock
	end := after.Truncate(time.Hour).Add(time.Hour)
	if lo, hi := end.Sub(after), end.Sub(before); d.Reset < lo || d.Reset > hi {
		t.Errorf("Reset %v, want within [%v, %v] (the server's hour)", d.Reset, lo, hi)
	}
}

// serverTime is the server's TIME.
func serverTime(t *testing.T, c rueidis.Client) time.Time {
	t.Helper()
	m := do(t, c, "TIME")
	parts, err := m.AsIntSlice()
	if err != nil || len(parts) != 2 {
		t.Fatalf("TIME: %v %v", parts, err)
	}
	return time.Unix(parts[0], parts[1]*1000)
}

func mustInt(t *testing.T, m rueidis.RedisMessage) int64 {
	t.Helper()
	n, err := m.AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n
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

// TestRedisTimeout: with the server down or hung, every call returns an error within
// Timeout (plus redisserver.Slack); when it is back, decisions work again.
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
	// Each call must fail within Timeout + redisserver.Slack. A missing bound (the client's
	// own socket timeouts, a retry backoff ignoring the context) takes seconds instead.
	check := func(outage string) {
		t.Helper()
		for name, call := range calls {
			var took [3]time.Duration
			var errs []error
			for i := range took {
				start := time.Now()
				err := call()
				took[i] = time.Since(start)
				if err == nil {
					t.Errorf("%s while %s: no error", name, outage)
				}
				errs = append(errs, err)
			}
			t.Logf("%s while %s: errors after %v: %v", name, outage, took, errs)
			if slices.Max(took[:]) > timeout+redisserver.Slack {
				t.Errorf("%s while %s: returned after %v, want all <= %v", name, outage, took, timeout+redisserver.Slack)
			}
		}
	}
	mustAllow(t, lim, "k", r, 1, time.Time{}, true)

	// back: Redis first works off what queued while it was away, and on a busy machine that
	// may take longer than one timeout
	recovered := func(phase string) Decision {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			d, err := lim.Allow(ctx, "k", r, 1, time.Time{})
			if err == nil {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still failing after 5 s: %v", phase, err)
			}
		}
	}

	srv.Pause()
	check("paused")
	srv.Resume()
	recovered("resumed")

	srv.Stop()
	check("stopped")
	srv.Restart() // empty: the scripts must be loaded again
	if d := recovered("restarted"); d.Remaining != 99 {
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

// TestRedisCallsReturnByTheDeadline: rueidis makes a caller that finds a connection being
// re-established wait for that dial, whatever the caller's context says. Here every redial
// hangs for 3 s (a dialer that ignores its context, as a half-dead network can); every call
// must still return by its own deadline, for the first caller and for those queued behind.
func TestRedisCallsReturnByTheDeadline(t *testing.T) {
	const timeout = 50 * time.Millisecond
	srv := redisserver.Start(t)
	var dials atomic.Int64
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{srv.Addr()}, ForceSingleClient: true, DisableCache: true, DisableRetry: true,
		DialCtxFn: func(ctx context.Context, addr string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
			if dials.Add(1) > 1 { // every redial hangs
				select {
				case <-release:
				case <-time.After(3 * time.Second):
				}
			}
			return d.DialContext(ctx, "tcp", addr)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	lim := NewRedis(c, RedisOptions{Timeout: timeout})
	r := Rule{Algorithm: Hybrid, Limit: 100, Window: time.Minute}
	mustAllow(t, NewRedis(c, RedisOptions{Timeout: 10 * time.Second}), "k", r, 1, time.Time{}, true) // connected
	srv.Stop()                                                                                       // the connection breaks; the next calls redial
	var wg sync.WaitGroup
	var slowest atomic.Int64
	for range 8 {
		wg.Go(func() {
			start := time.Now()
			_, err := lim.Allow(context.Background(), "k", r, 1, time.Time{})
			took := time.Since(start)
			for old := slowest.Load(); int64(took) > old && !slowest.CompareAndSwap(old, int64(took)); old = slowest.Load() {
			}
			if err == nil {
				t.Error("a call succeeded with the server stopped")
			}
		})
	}
	wg.Wait()
	if dials.Load() < 2 {
		t.Fatal("no redial happened: the test did not exercise the waiting")
	}
	if s := time.Duration(slowest.Load()); s > timeout+redisserver.Slack {
		t.Errorf("a call returned after %v, want <= %v (its timeout + slack; the hung redial takes 3 s)", s, timeout+redisserver.Slack)
	}
}
