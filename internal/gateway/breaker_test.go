package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/gateway/breaker"
	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
)

// TestBreakerWithSimulatorFailures drives the primary's breaker with the simulator's failure
// injection (503 server_error) and an injected clock: closed → open (traffic to the fallback)
// → half-open probe → closed.
func TestBreakerWithSimulatorFailures(t *testing.T) {
	primary := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B"})
	fallback := simulator.Start(t, simulator.Options{Model: "Qwen3-0.6B"})
	clock := newClock()
	tg := startGateway(t, clock, fmt.Sprintf(`
upstream: {url: %q, model: Qwen3-1.7B}
fallback: {url: %q, model: Qwen3-0.6B}
breaker: {failureThreshold: 5, recoveryTimeout: 30s, halfOpenRequests: 1}
`, primary.URL, fallback.URL))
	send := func() (code int, upstream string) {
		resp := tg.post(t, "/v1/chat/completions", chatBody)
		readAll(t, resp)
		return resp.StatusCode, resp.Header.Get("X-Qwen-Upstream")
	}
	state := func() float64 {
		return metricValue(t, tg.Gateway, "qwen_gateway_upstream_circuit_state", "upstream", "primary")
	}

	primary.SetFailures(t, 100, "server_error")
	for i := 0; i < 5; i++ {
		if code, up := send(); code != 503 || up != "primary" {
			t.Fatalf("failure %d: %d from %s", i, code, up)
		}
	}
	if state() != float64(breaker.Open) {
		t.Fatalf("state %v after 5 failures, want open", state())
	}
	if code, up := send(); code != 200 || up != "fallback" {
		t.Fatalf("open breaker: %d from %s, want 200 from fallback", code, up)
	}
	clock.Advance(29 * time.Second)
	if _, up := send(); up != "fallback" {
		t.Fatalf("before the recovery timeout: %s", up)
	}
	// After the timeout one probe goes to the primary, which still fails: open again.
	clock.Advance(time.Second)
	if code, up := send(); code != 503 || up != "primary" {
		t.Fatalf("failed probe: %d from %s", code, up)
	}
	if state() != float64(breaker.Open) {
		t.Fatalf("state %v after a failed probe, want open", state())
	}
	primary.SetFailures(t, 0)
	clock.Advance(30 * time.Second)
	if tg.state.Load().primary.breaker.State(clock.Now()) != breaker.HalfOpen {
		t.Fatal("not half-open after the recovery timeout")
	}
	if code, up := send(); code != 200 || up != "primary" {
		t.Fatalf("good probe: %d from %s", code, up)
	}
	if state() != float64(breaker.Closed) {
		t.Fatalf("state %v after a good probe, want closed", state())
	}
	if code, up := send(); code != 200 || up != "primary" {
		t.Fatalf("closed: %d from %s", code, up)
	}
}

// TestBreakerExact uses upstreams the test controls exactly: connection errors count as
// failures, 4xx do not, and with no fallback the static reply (or 503) answers.
func TestBreakerExact(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	clock := newClock()
	static := "degradation: {staticResponse: {message: busy}}\n"
	tg := startGateway(t, clock, basicConfig(e.srv.URL)+"breaker: {failureThreshold: 2, recoveryTimeout: 10s, halfOpenRequests: 2}\n"+static)
	send := func() (int, string, string) {
		resp := tg.post(t, "/v1/chat/completions", chatBody)
		return resp.StatusCode, resp.Header.Get("X-Qwen-Upstream"), readAll(t, resp)
	}
	e.status.Store(400) // client errors say nothing about the upstream's health
	for i := 0; i < 3; i++ {
		if code, _, _ := send(); code != 400 {
			t.Fatalf("400 not passed through: %d", code)
		}
	}
	e.status.Store(500)
	send()
	e.status.Store(0)
	send() // a success resets the count
	e.status.Store(500)
	send()
	if code, up, body := send(); code != 500 || up != "primary" {
		t.Fatalf("second consecutive failure: %d %s %s", code, up, body)
	}
	calls := e.calls.Load()
	code, up, body := send()
	if code != 200 || up != "static" || !strings.Contains(body, `"content":"busy"`) || e.calls.Load() != calls {
		t.Fatalf("open without fallback: %d %s %s", code, up, body)
	}
	// Two probes must succeed to close.
	clock.Advance(10 * time.Second)
	e.status.Store(0)
	if code, up, _ := send(); code != 200 || up != "primary" {
		t.Fatalf("probe 1: %d %s", code, up)
	}
	if tg.state.Load().primary.breaker.State(clock.Now()) != breaker.HalfOpen {
		t.Fatal("closed after one of two probes")
	}
	send()
	if tg.state.Load().primary.breaker.State(clock.Now()) != breaker.Closed {
		t.Fatal("not closed after two good probes")
	}

	// Connection errors: an upstream that is gone. Without a static reply: 503 once open.
	e.srv.Close()
	tg.Load([]byte(basicConfig(e.srv.URL) + "breaker: {failureThreshold: 2, recoveryTimeout: 10s}\n"))
	for i := 0; i < 2; i++ {
		if code, _, body := send(); code != 502 {
			t.Fatalf("connection error %d: %d %s", i, code, body)
		}
	}
	code, up, body = send()
	if code != 503 || up != "static" {
		t.Fatalf("open, nothing configured: %d %s %s", code, up, body)
	}
	openAIError(t, body)
}

// TestClientErrorDoesNotCloseHalfOpen: a half-open probe the engine refuses with a 4xx (the
// client's fault) says nothing about the engine: the breaker stays half-open and the next
// request probes again.
func TestClientErrorDoesNotCloseHalfOpen(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	clock := newClock()
	tg := startGateway(t, clock, basicConfig(e.srv.URL)+"breaker: {failureThreshold: 1, recoveryTimeout: 10s}\n")
	send := func(status int32) int {
		e.status.Store(status)
		resp := tg.post(t, "/v1/chat/completions", chatBody)
		readAll(t, resp)
		return resp.StatusCode
	}
	state := func() breaker.State { return tg.state.Load().primary.breaker.State(clock.Now()) }
	send(500)
	if state() != breaker.Open {
		t.Fatal("not open after a failure")
	}
	clock.Advance(10 * time.Second)
	for _, code := range []int32{400, 404, 422} {
		if got := send(code); got != int(code) || state() != breaker.HalfOpen {
			t.Fatalf("a %d probe: answered %d, breaker %s, want half-open", code, got, state())
		}
	}
	if send(0) != 200 || state() != breaker.Closed {
		t.Fatalf("a good probe: breaker %s", state())
	}
}
