package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

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
	var codes []int
	for i := 0; i < 4; i++ {
		g := a
		if i%2 == 1 {
			g = b
		}
		resp := g.post(t, "/v1/chat/completions", chatBody)
		readAll(t, resp)
		codes = append(codes, resp.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 200 200 429]" {
		t.Fatalf("codes %v, want the 3/min limit shared", codes)
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
