package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func limitConfig(engineURL, rateLimit string) string {
	return basicConfig(engineURL) + "rateLimit:\n" + rateLimit
}

const chatBody = `{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"hi"}]}`

func TestRateLimited429BodyAndHeaders(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	clock := newClock()
	tg := startGateway(t, clock, limitConfig(e.srv.URL, `
  policy: qwen3-limits
  algorithm: FixedWindow
  limits: {requestsPerMinute: 2, maxConcurrentRequests: 4}
`))
	// Align to a minute boundary so the fixed window's reset is exact.
	clock.Advance(time.Minute - time.Duration(clock.Now().UnixNano()%int64(time.Minute)))
	for i := 0; i < 2; i++ {
		if resp := tg.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, readAll(t, resp))
		}
	}
	clock.Advance(20 * time.Second)
	resp := tg.post(t, "/v1/chat/completions", chatBody)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want := `{"error":{"message":"Rate limit reached: 2 requests per minute. Please retry after 40 s.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`
	if strings.TrimSpace(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
	headers := map[string]string{
		"Content-Type":          "application/json",
		"Retry-After":           "40",
		"RateLimit-Policy":      `"qwen3-limits";q=2;w=60, "qwen3-limits-concurrency";q=4;qu="concurrency"`,
		"RateLimit":             `"qwen3-limits";r=0;t=40`,
		"X-RateLimit-Limit":     "2",
		"X-RateLimit-Remaining": "0",
		"X-RateLimit-Reset":     "40",
	}
	for k, v := range headers {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if e.calls.Load() != 2 {
		t.Errorf("engine called %d times, want 2", e.calls.Load())
	}
	if got := waitMetric(t, tg.Gateway, 1, "qwen_gateway_rate_limited_total", "reason", "requests", "mode", "Enforce"); got != 1 {
		t.Errorf("rate_limited_total = %v", got)
	}
	if got := waitMetric(t, tg.Gateway, 1, "qwen_gateway_requests_total", "code", "429"); got != 1 {
		t.Errorf("requests_total{code=429} = %v", got)
	}
	clock.Advance(40 * time.Second)
	if resp := tg.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
		t.Fatalf("after the window: %d", resp.StatusCode)
	}
}

func TestRateLimitShadowCountsButAdmits(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, newClock(), limitConfig(e.srv.URL, `
  policy: p
  mode: Shadow
  limits: {requestsPerMinute: 1}
`))
	for i := 0; i < 3; i++ {
		if resp := tg.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if got := waitMetric(t, tg.Gateway, 2, "qwen_gateway_rate_limited_total", "reason", "requests", "mode", "Shadow"); got != 2 {
		t.Errorf("shadow rejections counted = %v, want 2", got)
	}
}

func TestRateLimitPerClientKeysAndOverrides(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	dir := t.TempDir()
	writeKey(t, dir, "team-a", "sk-a")
	writeKey(t, dir, "team-b", "sk-b")
	tg := startGateway(t, newClock(), basicConfig(e.srv.URL)+fmt.Sprintf(`auth: {keysDir: %q}
rateLimit:
  policy: p
  key: {source: APIKey}
  algorithm: TokenBucket
  limits: {requestsPerMinute: 1}
  overrides: [{name: premium, keys: [team-a], limits: {requestsPerMinute: 3}}]
`, dir))
	codes := func(key string, n int) string {
		var out []string
		for i := 0; i < n; i++ {
			resp := tg.post(t, "/v1/chat/completions", chatBody, "Authorization", "Bearer "+key)
			readAll(t, resp)
			out = append(out, fmt.Sprint(resp.StatusCode))
		}
		return strings.Join(out, ",")
	}
	if got := codes("sk-a", 4); got != "200,200,200,429" {
		t.Errorf("premium key: %s", got)
	}
	if got := codes("sk-b", 2); got != "200,429" {
		t.Errorf("base key: %s", got)
	}
}

func TestRateLimitClientIPFromTrustedProxy(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, newClock(), basicConfig(e.srv.URL)+`trustedProxies: [127.0.0.1]
rateLimit:
  policy: p
  limits: {requestsPerMinute: 1}
  overrides: [{name: office, keys: [203.0.113.0/24], limits: {requestsPerMinute: 2}}]
`)
	code := func(xff string) int {
		resp := tg.post(t, "/v1/chat/completions", chatBody, "X-Forwarded-For", xff)
		readAll(t, resp)
		return resp.StatusCode
	}
	// Each forwarded client has its own bucket; the office range gets 2.
	if code("198.51.100.1") != 200 || code("198.51.100.1") != 429 || code("198.51.100.2") != 200 {
		t.Error("per-IP limits from X-Forwarded-For not applied")
	}
	if code("203.0.113.9") != 200 || code("203.0.113.9") != 200 || code("203.0.113.9") != 429 {
		t.Error("CIDR override not applied")
	}
}

func TestTokenLimitTrueUp(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	e.promptTok, e.complTok = 40, 50 // 90 tokens per request
	tg := startGateway(t, newClock(), limitConfig(e.srv.URL, `
  policy: p
  limits: {tokensPerMinute: 200}
`))
	// The estimate (prompt bytes/4 + max_tokens = 16+10) passes; the true-up charges 90 each.
	var codes []int
	var last *http.Response
	var lastBody string
	for i := 0; i < 3; i++ {
		last = tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","max_tokens":10,"messages":[{"role":"user","content":"0123456789012345678901234567890123456789"}]}`)
		lastBody = readAll(t, last)
		codes = append(codes, last.StatusCode)
	}
	// 90 + 90 = 180 used; the third asks for 17+10 more: 207 > 200.
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Fatalf("codes %v", codes)
	}
	// 20 tokens are left, and the request's 27 fit in 63 s: every reset the 429 gives says so.
	if last.Header.Get("RateLimit") != `"p-tokens";r=20;t=63` || last.Header.Get("Retry-After") != "63" ||
		last.Header.Get("X-RateLimit-Reset") != "63" || last.Header.Get("X-Ratelimit-Reset-Tokens") != "1m3s" ||
		last.Header.Get("X-Ratelimit-Remaining-Tokens") != "20" || !strings.Contains(lastBody, "200 tokens per minute") {
		t.Fatalf("token rejection: %v %s", last.Header, lastBody)
	}
	// A small request still fits the 20 tokens left (without a max_tokens it would be
	// charged the policy's assumedMaxTokens up front).
	if resp := tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 {
		t.Fatalf("small request: %d", resp.StatusCode)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	e.release = make(chan struct{})
	tg := startGateway(t, newClock(), limitConfig(e.srv.URL, `
  policy: p
  limits: {maxConcurrentRequests: 1}
`))
	streamBody := `{"model":"Qwen3-1.7B","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	first := tg.post(t, "/v1/chat/completions", streamBody) // held open by the engine
	second := tg.post(t, "/v1/chat/completions", chatBody)
	body := readAll(t, second)
	if second.StatusCode != 429 || second.Header.Get("RateLimit") != `"p-concurrency";r=0;t=1` {
		t.Fatalf("second: %d %v %s", second.StatusCode, second.Header, body)
	}
	close(e.release)
	readAll(t, first)
	if resp := tg.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
		t.Fatalf("slot not released: %d", resp.StatusCode)
	}
}
