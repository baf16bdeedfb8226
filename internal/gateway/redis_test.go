package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
	"github.com/qwenops/qwen-operator/internal/ratelimit"
	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

func redisConfig(engineURL, addr, failureMode string) string {
	return limitConfig(engineURL, fmt.Sprintf(`
  policy: p
  algorithm: SlidingWindow
  failureMode: %s
  backendTimeout: 50ms
  limits: {requestsPerMinute: 3, tokensPerMinute: 100000, maxConcurrentRequests: 10}
  redis: {address: %q}
`, failureMode, addr))
}

// decide runs one admission decision like a request would, metrics included, and returns
// whether it was admitted and how long the decision took.
func decide(t *testing.T, tg *testGateway, client string) (bool, time.Duration) {
	t.Helper()
	req, aerr := parseRequest(chatEndpoint, "application/json", []byte(chatBody))
	if aerr != nil {
		t.Fatal(aerr)
	}
	p := tg.state.Load().policy
	start := time.Now()
	rec := tg.m.begin(start, 0)
	a, rej := p.admit(context.Background(), identifyKey(client), req, start, rec)
	took := time.Since(start)
	a.finish(nil, time.Now(), rec)
	tg.m.end(rec, map[bool]int{true: 200, false: 429}[rej == nil], time.Now())
	return rej == nil, took
}

func identifyKey(k string) client { return client{key: "ip:" + k} }

// deadlineRecorder is a limiter that records the deadline of every call's context.
type deadlineRecorder struct {
	limiter
	deadlines []time.Time
}

func (d *deadlineRecorder) note(ctx context.Context) {
	dl, _ := ctx.Deadline()
	d.deadlines = append(d.deadlines, dl)
}

func (d *deadlineRecorder) Allow(ctx context.Context, key string, r ratelimit.Rule, n int64, now time.Time) (ratelimit.Decision, error) {
	d.note(ctx)
	return d.limiter.Allow(ctx, key, r, n, now)
}

func (d *deadlineRecorder) Acquire(ctx context.Context, key string, max int64, now time.Time) (func(), bool, error) {
	d.note(ctx)
	return d.limiter.Acquire(ctx, key, max, now)
}

// TestOneDeadlinePerDecision: every limiter call of one admission shares one deadline, the
// backend timeout from the decision's start: an outage costs a request one timeout, not one
// per quota. (Structural, so no wall-clock bound is needed to show it.)
func TestOneDeadlinePerDecision(t *testing.T) {
	rl := &gatewayconfig.RateLimit{Policy: "p", BackendTimeout: metav1.Duration{Duration: 50 * time.Millisecond},
		Limits: gatewayconfig.Limits{RequestsPerMinute: 10, TokensPerMinute: 1000, InputTokensPerMinute: 1000, OutputTokensPerMinute: 1000, MaxConcurrentRequests: 2}}
	rl.Default()
	p, err := newPolicy(rl)
	if err != nil {
		t.Fatal(err)
	}
	rec := &deadlineRecorder{limiter: ratelimit.NewMemory(ratelimit.MemoryOptions{})}
	p.lim = rec
	req, aerr := parseRequest(chatEndpoint, "application/json", []byte(chatBody))
	if aerr != nil {
		t.Fatal(aerr)
	}
	start := time.Now()
	a, rej := p.admit(context.Background(), identifyKey("c"), req, start, &record{})
	if rej != nil {
		t.Fatalf("rejected: %+v", rej)
	}
	a.finish(nil, start, &record{})
	if len(rec.deadlines) != 5 {
		t.Fatalf("%d calls, want 4 quotas and the concurrency slot", len(rec.deadlines))
	}
	for i, dl := range rec.deadlines {
		if !dl.Equal(rec.deadlines[0]) || dl.IsZero() || dl.After(time.Now().Add(50*time.Millisecond)) {
			t.Fatalf("call %d: deadline %v, want the decision's one deadline %v", i, dl, rec.deadlines[0])
		}
	}
}

// TestRedisOutage stops Redis mid-run: FailOpen admits and FailClosed rejects, each decision
// within the backend timeout (+ redisserver.Slack), both for a dead server (connection refused) and a hung
// one (SIGSTOP: every call times out); limits apply again once Redis is back.
func TestRedisOutage(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	for _, mode := range []string{"FailOpen", "FailClosed"} {
		t.Run(mode, func(t *testing.T) {
			rs := redisserver.Start(t)
			tg := startGateway(t, nil, redisConfig(e.srv.URL, rs.Addr(), mode))
			const bound = 50*time.Millisecond + redisserver.Slack
			// Healthy: the limit (3/min) is enforced through Redis.
			for i := 0; i < 4; i++ {
				ok, _ := decide(t, tg, "healthy")
				if ok != (i < 3) {
					t.Fatalf("healthy decision %d: admitted=%v", i, ok)
				}
			}
			check := func(phase string) {
				t.Helper()
				errs := metricValue(t, tg.Gateway, "qwen_gateway_limiter_backend_errors_total")
				for i := 0; i < 10; i++ {
					ok, took := decide(t, tg, fmt.Sprintf("%s-%d", phase, i%2))
					if ok != (mode == "FailOpen") {
						t.Fatalf("%s decision %d: admitted=%v", phase, i, ok)
					}
					if took > bound {
						t.Fatalf("%s decision %d took %v > %v", phase, i, took, bound)
					}
				}
				if metricValue(t, tg.Gateway, "qwen_gateway_limiter_backend_errors_total") <= errs {
					t.Fatalf("%s: backend errors not counted", phase)
				}
				// Through HTTP too: FailOpen answers 200, FailClosed 429.
				resp := tg.post(t, "/v1/chat/completions", chatBody)
				body := readAll(t, resp)
				if want := map[string]int{"FailOpen": 200, "FailClosed": 429}[mode]; resp.StatusCode != want {
					t.Fatalf("%s HTTP: %d %s", phase, resp.StatusCode, body)
				}
			}
			rs.Pause()
			check("hung")
			rs.Resume()
			rs.Stop()
			check("stopped")
			if mode == "FailClosed" {
				if got := metricValue(t, tg.Gateway, "qwen_gateway_rate_limited_total", "reason", "limiter_unavailable", "mode", "Enforce"); got == 0 {
					t.Fatal("limiter_unavailable rejections not counted")
				}
			}
			rs.Restart()
			deadline := time.Now().Add(5 * time.Second) // the client reconnects on its next call
			for {
				ok1, _ := decide(t, tg, "after")
				if ok1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("Redis back but requests still rejected")
				}
			}
			decide(t, tg, "after")
			decide(t, tg, "after")
			if ok, _ := decide(t, tg, "after"); ok {
				t.Fatal("limit not enforced after Redis came back")
			}
		})
	}
}

// TestRedisSharedAcrossGateways: two gateway replicas sharing one Redis share one limit.
func TestRedisSharedAcrossGateways(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	rs := redisserver.Start(t)
	a := startGateway(t, nil, redisConfig(e.srv.URL, rs.Addr(), "FailClosed"))
	b := startGateway(t, nil, redisConfig(e.srv.URL, rs.Addr(), "FailClosed"))
	codes := alternate(t, 4, a, b)
	if fmt.Sprint(codes) != "[200 200 200 429]" {
		t.Fatalf("codes %v, want the 3/min limit shared", codes)
	}
}

// TestFailOpenDecidesEveryQuota: with FailOpen, a backend error on one quota (here a state key
// that is not the limiter's: WRONGTYPE) admits on that quota only; the request's other quotas
// are still decided, charged and reported, so the concurrency limit holds.
func TestFailOpenDecidesEveryQuota(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	e.release = make(chan struct{})
	rs := redisserver.Start(t)
	tg := startGateway(t, nil, limitConfig(e.srv.URL, fmt.Sprintf(`
  policy: p
  failureMode: FailOpen
  limits: {requestsPerMinute: 100, maxConcurrentRequests: 1}
  redis: {address: %q}
`, rs.Addr())))
	if resp := tg.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	reply, err := rs.Do("KEYS", "*:requests:*")
	keys, _ := reply.AsStrSlice()
	if err != nil || len(keys) != 1 {
		t.Fatalf("request quota keys %v %v", keys, err)
	}
	// Poison the request quota's state: every decision on it now fails.
	if _, err := rs.Do("DEL", keys[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Do("RPUSH", keys[0], "not a limiter state"); err != nil {
		t.Fatal(err)
	}
	held := tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if held.StatusCode != 200 {
		t.Fatalf("held stream: %d", held.StatusCode)
	}
	resp := tg.post(t, "/v1/chat/completions", chatBody)
	body := readAll(t, resp)
	close(e.release)
	readAll(t, held)
	if resp.StatusCode != 429 || resp.Header.Get("RateLimit") != `"p-concurrency";r=0;t=1` {
		t.Fatalf("a second request while one holds the only slot: %d %s, want the concurrency limit despite the failing request quota", resp.StatusCode, body)
	}
	if got := waitMetric(t, tg.Gateway, 2, "qwen_gateway_limiter_backend_errors_total"); got != 2 {
		t.Errorf("backend errors %v, want each failed call counted", got)
	}
	if got := waitMetric(t, tg.Gateway, 1, "qwen_gateway_rate_limited_total", "reason", "concurrency", "mode", "Enforce"); got != 1 {
		t.Errorf("rate_limited_total{concurrency} = %v", got)
	}
}

// TestRedisTLSAndPassword: a Redis serving only TLS with a test CA and a password. Gateways
// that trust the CA (caFile) and have the password share its limit; one trusting only the
// system's CAs, or with a wrong password, cannot decide and applies its failure mode.
func TestRedisTLSAndPassword(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	rs, ca := redisserver.StartTLS(t, "s3cret")
	config := func(redis string) string {
		return limitConfig(e.srv.URL, fmt.Sprintf(`
  policy: p
  algorithm: FixedWindow
  failureMode: FailClosed
  backendTimeout: 200ms
  limits: {requestsPerMinute: 3}
  redis: %s
`, redis))
	}
	t.Setenv("QWEN_REDIS_PASSWORD", "s3cret")
	t.Setenv("WRONG_PASSWORD", "guess")
	good := config(fmt.Sprintf("{address: %q, tls: true, caFile: %q}", rs.Addr(), ca))
	a, b := startGateway(t, nil, good), startGateway(t, nil, good)
	var got []bool
	for i := range 4 {
		ok, _ := decide(t, []*testGateway{a, b}[i%2], "tls-client")
		got = append(got, ok)
	}
	if fmt.Sprint(got) != "[true true true false]" {
		t.Errorf("decisions %v, want the limit of 3 shared over TLS", got)
	}
	for name, redis := range map[string]string{
		"system CAs":     fmt.Sprintf("{address: %q, tls: true}", rs.Addr()),
		"wrong password": fmt.Sprintf("{address: %q, tls: true, caFile: %q, passwordEnv: WRONG_PASSWORD}", rs.Addr(), ca),
		"no TLS":         fmt.Sprintf("{address: %q}", rs.Addr()),
	} {
		tg := startGateway(t, nil, config(redis))
		if ok, took := decide(t, tg, "other-client"); ok || took > 200*time.Millisecond+redisserver.Slack {
			t.Errorf("%s: admitted=%v after %v, want a FailClosed rejection within the timeout", name, ok, took)
		}
		if metricValue(t, tg.Gateway, "qwen_gateway_limiter_backend_errors_total") == 0 {
			t.Errorf("%s: no backend error counted", name)
		}
	}
}
