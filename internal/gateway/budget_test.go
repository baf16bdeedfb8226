package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHourlyRequestBudget: requestsPerHour holds over the hour, on top of a per-minute limit
// the requests stay under; the 429 names the hour, RateLimit-Policy announces w=3600 and
// rate_limited_total counts reason requests_per_hour. Two hours later the budget is back.
func TestHourlyRequestBudget(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	clock := newClock()
	tg := startGateway(t, clock, limitConfig(e.srv.URL, `
  policy: p
  limits: {requestsPerMinute: 10, requestsPerHour: 2}
`))
	for i := range 2 {
		resp := tg.post(t, "/v1/chat/completions", chatBody)
		if readAll(t, resp); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		clock.Advance(10 * time.Minute)
	}
	resp := tg.post(t, "/v1/chat/completions", chatBody)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "2 requests per hour") {
		t.Fatalf("third request in the hour: %d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("RateLimit-Policy"); got != `"p";q=10;w=60, "p-per-hour";q=2;w=3600` {
		t.Errorf("RateLimit-Policy %q", got)
	}
	if got := resp.Header.Get("RateLimit"); !strings.HasPrefix(got, `"p-per-hour";r=0;`) {
		t.Errorf("RateLimit %q", got)
	}
	if n := waitMetric(t, tg.Gateway, 1, "qwen_gateway_rate_limited_total", "reason", "requests_per_hour", "mode", "Enforce"); n != 1 {
		t.Errorf("rate_limited_total{requests_per_hour} = %v", n)
	}
	clock.Advance(2 * time.Hour)
	resp = tg.post(t, "/v1/chat/completions", chatBody)
	if readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("two hours later: %d", resp.StatusCode)
	}
}

// TestDailyTokenBudgetPerKeyTier: tokensPerDay is charged up front and trued up to the usage
// like tokensPerMinute, per key, and an override tier has its own: the base key is refused
// once its day's 1000 tokens are used (600 per answer), the premium key is not.
func TestDailyTokenBudgetPerKeyTier(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	e.promptTok, e.complTok = 300, 300
	dir := t.TempDir()
	writeKey(t, dir, "base", "sk-base")
	writeKey(t, dir, "premium", "sk-premium")
	tg := startGateway(t, newClock(), basicConfig(e.srv.URL)+`auth: {keysDir: "`+dir+`"}
rateLimit:
  policy: p
  key: {source: APIKey}
  limits: {tokensPerDay: 1000}
  overrides: [{name: premium, keys: [premium], limits: {tokensPerDay: 100000}}]
`)
	small := `{"model":"Qwen3-1.7B","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	codes := func(key string) []int {
		var out []int
		for range 3 {
			resp := tg.post(t, "/v1/chat/completions", small, "Authorization", "Bearer "+key)
			body := readAll(t, resp)
			out = append(out, resp.StatusCode)
			if resp.StatusCode == 429 && !strings.Contains(body, "1000 tokens per day") {
				t.Errorf("429 body %s", body)
			}
		}
		return out
	}
	if got := codes("sk-base"); got[0] != 200 || got[1] != 200 || got[2] != 429 {
		t.Errorf("base key: %v, want 200 200 429 (1200 of 1000 tokens used after two)", got)
	}
	if got := codes("sk-premium"); got[2] != 200 {
		t.Errorf("premium key: %v", got)
	}
}
