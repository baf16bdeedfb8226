package gateway

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

// The failover tests: gateways deciding through a Redis Cluster or a Sentinel-managed master
// while it reshards or fails over. Each phase checks that every decision returned within the
// backend timeout (+ redisserver.Slack), that every backend failure was decided by the failure
// mode, and that afterwards the limits are exact again: at one instant (the gateway's clock,
// RedisAtNow), a fresh client gets exactly its limit, however many callers race for it.

const topologyTimeout = 100 * time.Millisecond

// topologyGateway starts a gateway at a fixed instant deciding on Redis at that instant.
func topologyGateway(t *testing.T, engineURL, redis, mode string, rpm, conc int) *testGateway {
	t.Helper()
	clock := newClock()
	tg := startGatewayWith(t, Options{Now: clock.Now, Logger: quietLogger(), RedisAtNow: true}, topologyConfig(engineURL, redis, mode, rpm, conc))
	tg.clock = clock
	return tg
}

// startGatewayWith is startGateway with Options.
func startGatewayWith(t testing.TB, opts Options, config string) *testGateway {
	t.Helper()
	g := New(opts)
	if err := g.Load([]byte(config)); err != nil {
		t.Fatalf("config: %v", err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		srv.Close()
		g.Close()
	})
	return &testGateway{Gateway: g, srv: srv}
}

func topologyConfig(engineURL, redis, mode string, rpm, conc int) string {
	return limitConfig(engineURL, fmt.Sprintf(`
  policy: p
  algorithm: SlidingWindow
  failureMode: %s
  backendTimeout: %s
  limits: {requestsPerMinute: %d, maxConcurrentRequests: %d}
  redis: %s
`, mode, topologyTimeout, rpm, conc, redis))
}

// loadResult counts the decisions of a load run.
type loadResult struct {
	decisions, admitted, unavailable, other atomic.Int64
	slowest                                 atomic.Int64 // ns
	late                                    atomic.Int64 // decisions past the backend timeout + 20ms
	http200, http429, httpBad               atomic.Int64
	mu                                      sync.Mutex
	badHTTP                                 []string
}

// runLoad decides for many clients from workers goroutines, plus a trickle of HTTP requests,
// until event returns (and at least until each worker made a few decisions); every loop is
// bounded by a count and by a deadline.
func runLoad(t *testing.T, tg *testGateway, workers int, event func()) *loadResult {
	t.Helper()
	res := &loadResult{}
	stop := make(chan struct{})
	deadline := time.Now().Add(2 * time.Minute)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < 1_000_000 && time.Now().Before(deadline); i++ {
				if i >= 20 {
					select {
					case <-stop:
						return
					default:
					}
				}
				ok, reason, took := decideReason(t, tg, fmt.Sprintf("load-%d-%d", w, i%97))
				res.decisions.Add(1)
				switch {
				case ok:
					res.admitted.Add(1)
				case reason == reasonUnavailable:
					res.unavailable.Add(1)
				default:
					res.other.Add(1)
				}
				for old := res.slowest.Load(); int64(took) > old && !res.slowest.CompareAndSwap(old, int64(took)); old = res.slowest.Load() {
				}
				if took > topologyTimeout+20*time.Millisecond {
					res.late.Add(1)
				}
			}
		})
	}
	wg.Go(func() { // the HTTP path too: a panic there would show as a broken response
		for i := 0; i < 100_000 && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			resp := tg.post(t, "/v1/chat/completions", chatBody, "X-Forwarded-For", fmt.Sprintf("10.1.0.%d", i%200))
			body := readAll(t, resp)
			switch {
			case resp.StatusCode == 200:
				res.http200.Add(1)
			case resp.StatusCode == 429 && strings.Contains(body, "rate_limit_exceeded"):
				res.http429.Add(1)
			default:
				res.httpBad.Add(1)
				res.mu.Lock()
				res.badHTTP = append(res.badHTTP, fmt.Sprintf("%d %s", resp.StatusCode, body))
				res.mu.Unlock()
			}
		}
	})
	defer wg.Wait() // also when event fails the test
	defer close(stop)
	event()
	return res
}

// decideReason runs one admission decision like a request would and returns whether it was
// admitted, the rejection's reason, and how long the decision took.
func decideReason(t *testing.T, tg *testGateway, key string) (bool, string, time.Duration) {
	req, aerr := parseRequest(chatEndpoint, "application/json", []byte(chatBody))
	if aerr != nil {
		t.Error(aerr)
		return false, "", 0
	}
	p := tg.state.Load().policy
	start := time.Now()
	rec := tg.m.begin(start, 0)
	a, rej := p.admit(context.Background(), identifyKey(key), req, tg.clock.Now(), rec)
	took := time.Since(start)
	if a != nil {
		a.finish(nil, tg.clock.Now(), rec)
		tg.m.end(rec, 200, time.Now())
		return true, "", took
	}
	tg.m.end(rec, 429, time.Now())
	return false, rej.reason, took
}

// checkFailureMode checks a load run against the failure mode: with FailOpen every decision
// and HTTP request was admitted (the limits are far above the load); with FailClosed exactly
// the decisions and requests the backend could not make were rejected (limiter_unavailable,
// or a 429 over HTTP), one per backend error. Every decision returned within the backend
// timeout (+ Slack).
func checkFailureMode(t *testing.T, tg *testGateway, mode string, res *loadResult, errsBefore float64, wantErrors bool) {
	t.Helper()
	errs := int64(metricValue(t, tg.Gateway, "qwen_gateway_limiter_backend_errors_total") - errsBefore)
	n, adm, un, other := res.decisions.Load(), res.admitted.Load(), res.unavailable.Load(), res.other.Load()
	h200, h429 := res.http200.Load(), res.http429.Load()
	slowest := time.Duration(res.slowest.Load())
	t.Logf("%s: %d decisions (%d admitted, %d limiter_unavailable, %d other), HTTP %d×200 %d×429, %d backend errors, slowest decision %v, %d past the timeout + 20ms",
		mode, n, adm, un, other, h200, h429, errs, slowest, res.late.Load())
	if slowest > topologyTimeout+redisserver.Slack {
		t.Errorf("a decision took %v, want <= %v (backend timeout + slack)", slowest, topologyTimeout+redisserver.Slack)
	}
	if other != 0 {
		t.Errorf("%d decisions rejected for another reason than limiter_unavailable, under limits far above the load", other)
	}
	if res.httpBad.Load() > 0 {
		t.Errorf("HTTP requests failed: %v", res.badHTTP)
	}
	switch mode {
	case "FailOpen":
		if adm != n || h429 != 0 {
			t.Errorf("FailOpen rejected %d decisions and %d HTTP requests", n-adm, h429)
		}
	case "FailClosed":
		if un+h429 != errs {
			t.Errorf("%d limiter_unavailable rejections and %d HTTP 429s, want one per backend error (%d)", un, h429, errs)
		}
	}
	if wantErrors && errs == 0 {
		t.Errorf("no backend error during the event: the failure mode was not exercised")
	}
}

// waitRoutable polls until a decision on each key goes through Redis without error: after a
// failover the client has to learn the new topology.
func waitRoutable(t *testing.T, tg *testGateway, keys []string) {
	t.Helper()
	p := tg.state.Load().policy
	q := p.base.quotas[0]
	deadline := time.Now().Add(30 * time.Second)
	for _, k := range keys {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), topologyTimeout)
			_, err := tg.redis.lim.Allow(ctx, q.prefix+"ip:"+k, q.rule, 0, tg.clock.Now())
			release, ok, err2 := tg.redis.lim.Acquire(ctx, p.base.concPrefix+"ip:"+k, p.base.maxConcurrent, tg.clock.Now())
			cancel()
			if ok {
				release()
			}
			if err == nil && err2 == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("key %s still not routable after the failover: %v, %v", k, err, err2)
			}
		}
	}
}

// checkExact hammers fresh clients from many goroutines and requires each to get exactly
// rpm decisions admitted; then, with a concurrency limit instead, a fresh client holding its
// admissions gets exactly conc.
func checkExact(t *testing.T, tg *testGateway, engineURL, redis, mode string, rpm, conc int, prefix string) {
	t.Helper()
	if err := tg.Load([]byte(topologyConfig(engineURL, redis, mode, rpm, 1_000_000))); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 12)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-exact-%d", prefix, i)
	}
	for _, k := range keys {
		// A decision that misses the backend timeout (a CPU starved by other work) is decided
		// by the failure mode, not by Redis: such a round proves nothing and is run again
		// with a fresh client.
		for attempt := 0; ; attempt++ {
			k := fmt.Sprintf("%s-%d", k, attempt)
			waitRoutable(t, tg, []string{k}) // routes checked with 0 units: the state stays fresh
			errs := metricValue(t, tg.Gateway, "qwen_gateway_limiter_backend_errors_total")
			var admitted, byRedis atomic.Int64
			var wg sync.WaitGroup
			var next atomic.Int64
			for range 16 {
				wg.Go(func() {
					for next.Add(1) <= int64(3*rpm) {
						ok, reason, _ := decideReason(t, tg, k)
						if ok {
							admitted.Add(1)
						}
						if ok || reason == "requests" {
							byRedis.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if failed := metricValue(t, tg.Gateway, "qwen_gateway_limiter_backend_errors_total") - errs; failed > 0 {
				if attempt == 4 {
					t.Fatalf("client %s: %0.f decisions missed the backend, 5 rounds in a row", k, failed)
				}
				t.Logf("client %s: %.0f of %d decisions missed the backend timeout; again with a fresh client", k, failed, 3*rpm)
				continue
			}
			if got := admitted.Load(); got != int64(rpm) || byRedis.Load() != int64(3*rpm) {
				t.Errorf("client %s: %d admitted of %d attempts (%d decided by the limits), want exactly %d", k, got, 3*rpm, byRedis.Load(), rpm)
			}
			break
		}
	}
	// concurrency: hold every admission; a fresh client gets exactly conc slots
	if err := tg.Load([]byte(topologyConfig(engineURL, redis, mode, 1_000_000, conc))); err != nil {
		t.Fatal(err)
	}
	p := tg.state.Load().policy
	req, _ := parseRequest(chatEndpoint, "application/json", []byte(chatBody))
	for attempt := 0; ; attempt++ {
		name := fmt.Sprintf("%s-exact-conc-%d", prefix, attempt)
		waitRoutable(t, tg, []string{name})
		errs := metricValue(t, tg.Gateway, "qwen_gateway_limiter_backend_errors_total")
		k := identifyKey(name)
		type taken struct {
			a   *admission
			rec *record
		}
		var held []taken
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 3 * conc {
			wg.Go(func() {
				rec := tg.m.begin(time.Now(), 0)
				a, _ := p.admit(context.Background(), k, req, tg.clock.Now(), rec)
				if a == nil {
					tg.m.end(rec, 429, time.Now())
					return
				}
				mu.Lock()
				held = append(held, taken{a, rec})
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, h := range held {
			h.a.finish(nil, tg.clock.Now(), h.rec)
			tg.m.end(h.rec, 200, time.Now())
		}
		if failed := metricValue(t, tg.Gateway, "qwen_gateway_limiter_backend_errors_total") - errs; failed > 0 {
			if attempt == 4 {
				t.Fatalf("concurrency: %.0f decisions missed the backend, 5 rounds in a row", failed)
			}
			t.Logf("concurrency: %.0f decisions missed the backend timeout; again with a fresh client", failed)
			continue
		}
		if len(held) != conc {
			t.Errorf("%d concurrent requests admitted, want exactly %d", len(held), conc)
		}
		return
	}
}

// failoverPhase runs the load against a gateway with limits far above it while event
// changes the topology, checks the failure mode, then (once settled returns) reloads the
// gateway with small limits (same Redis, so the same client) and checks they are exact.
func failoverPhase(t *testing.T, engineURL, redis, mode string, event func(*testGateway), settled func(*testGateway)) {
	t.Helper()
	tg := topologyGateway(t, engineURL, redis, mode, 1_000_000, 1_000_000)
	errsBefore := metricValue(t, tg.Gateway, "qwen_gateway_limiter_backend_errors_total")
	res := runLoad(t, tg, 8, func() { event(tg) })
	checkFailureMode(t, tg, mode, res, errsBefore, true)
	if settled != nil {
		settled(tg)
	}
	checkExact(t, tg, engineURL, redis, mode, 50, 5, mode)
}

// waitOnServer polls until the gateway's Redis client talks to want (by run_id): a sentinel
// client follows a failover when the sentinels announce it, which may come after they all
// name the new master.
func waitOnServer(t *testing.T, tg *testGateway, want *redisserver.Server) {
	t.Helper()
	runID := want.Info("server")["run_id"]
	deadline := time.Now().Add(30 * time.Second)
	for {
		tg.redis.lim.mu.Lock()
		c := tg.redis.lim.client
		tg.redis.lim.mu.Unlock()
		var got string
		if c != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			txt, err := c.Do(ctx, c.B().Info().Section("server").Build()).ToString()
			cancel()
			if err == nil {
				for _, line := range strings.Split(txt, "\n") {
					if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
						got = v
					}
				}
			}
		}
		if got == runID {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway's client talks to run_id %q, not the master %s (%s)", got, want.Addr(), runID)
		}
		time.Sleep(20 * time.Millisecond) // polling another process's state
	}
}

// TestRedisClusterFailover: a 3-master Redis Cluster (a replica each) reshards and loses a
// master while 8 callers decide through the gateway, once per failure mode.
func TestRedisClusterFailover(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	c := redisserver.StartCluster(t, redisserver.ClusterOptions{Replicas: 1})
	redis := fmt.Sprintf("{cluster: {addresses: [%q]}}", c.Nodes[0].Addr()) // one seed: the rest is discovered
	// The phases run in this test's goroutine, not as subtests: the cluster's helpers fail
	// the test that started it.
	for i, mode := range []string{"FailOpen", "FailClosed"} {
		failoverPhase(t, e.srv.URL, redis, mode, func(*testGateway) {
			masters := c.Masters() // resharding from one to another, killing the third
			from, to, victim := masters[i%3], masters[(i+1)%3], masters[(i+2)%3]
			start := time.Now()
			c.Reshard(from, to, 1500)
			t.Logf("%s: resharded 1500 slots in %v", mode, time.Since(start))
			start = time.Now()
			promoted := c.KillMaster(victim, time.Minute)
			old := victim
			t.Logf("%s: killed master %s, replica %s promoted in %v", mode, old.Addr(), promoted.Addr(), time.Since(start))
			old.Restart() // it rejoins as the new master's replica, ready for the next phase
			c.WaitHealthy(time.Minute)
		}, nil)
	}
}

// TestRedisSentinelFailover: a master with 3 replicas and 3 sentinels loses its master
// (FailClosed), then fails over on request and loses the promoted master too (FailOpen),
// while 8 callers decide through the gateway, which finds the master through the sentinels.
// (After SENTINEL FAILOVER the old master keeps accepting writes until the sentinels turn
// it into a replica, seconds later; a client that has not yet seen +switch-master decides
// there, and those decisions are lost with its data. Redis Sentinel's, not ours.)
func TestRedisSentinelFailover(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	g := redisserver.StartSentinel(t, redisserver.SentinelOptions{Replicas: 3})
	redis := fmt.Sprintf("{sentinel: {masterName: %s, addresses: [%q, %q]}}", g.MasterName(), g.Sentinels[0].Addr(), g.Sentinels[1].Addr())
	kill := func(*testGateway) {
		start := time.Now()
		old, promoted := g.KillMaster(time.Minute)
		t.Logf("killed master %s, %s promoted in %v", old.Addr(), promoted.Addr(), time.Since(start))
	}
	events := map[string]func(*testGateway){
		"FailClosed": kill,
		"FailOpen": func(tg *testGateway) {
			start := time.Now()
			old, promoted := g.Failover(time.Minute)
			t.Logf("SENTINEL FAILOVER: %s promoted over %s in %v", promoted.Addr(), old.Addr(), time.Since(start))
			// The master killed next must be the one the gateway decides on: until the
			// client has followed the failover it still writes to the old master (which
			// accepts writes until the sentinels demote it), and the kill would miss it.
			waitOnServer(t, tg, promoted)
			kill(tg)
		},
	}
	for _, mode := range []string{"FailClosed", "FailOpen"} { // in this goroutine, as above
		failoverPhase(t, e.srv.URL, redis, mode, events[mode], func(tg *testGateway) { waitOnServer(t, tg, g.Master()) })
	}
}
