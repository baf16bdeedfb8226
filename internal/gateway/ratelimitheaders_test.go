package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
	"github.com/qwenops/qwen-operator/internal/ratelimit"
	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

// quotaHeaderSet is what a response says about the request quota, each field read from its
// own header.
type quotaHeaderSet struct {
	status                              int
	rateLimit, policy                   string
	retryAfter                          string
	limit, remaining, reset             string // X-RateLimit-*
	limitReq, remainingReq, resetReq    string // x-ratelimit-*-requests
	limitTok, remainingTok, resetTok    string // x-ratelimit-*-tokens
	remainingIETF, resetIETF, resetOpen int64  // parsed: RateLimit's first item r and t, reset-requests
}

func readQuotaHeaders(t *testing.T, resp *http.Response) quotaHeaderSet {
	t.Helper()
	readAll(t, resp)
	h := resp.Header
	q := quotaHeaderSet{
		status: resp.StatusCode, rateLimit: h.Get("RateLimit"), policy: h.Get("RateLimit-Policy"), retryAfter: h.Get("Retry-After"),
		limit: h.Get("X-RateLimit-Limit"), remaining: h.Get("X-RateLimit-Remaining"), reset: h.Get("X-RateLimit-Reset"),
		limitReq: h.Get("x-ratelimit-limit-requests"), remainingReq: h.Get("x-ratelimit-remaining-requests"), resetReq: h.Get("x-ratelimit-reset-requests"),
		limitTok: h.Get("x-ratelimit-limit-tokens"), remainingTok: h.Get("x-ratelimit-remaining-tokens"), resetTok: h.Get("x-ratelimit-reset-tokens"),
	}
	first, _, _ := strings.Cut(q.rateLimit, ",")
	for _, p := range strings.Split(first, ";")[1:] {
		n, _ := strconv.ParseInt(p[2:], 10, 64)
		switch p[:2] {
		case "r=":
			q.remainingIETF = n
		case "t=":
			q.resetIETF = n
		}
	}
	if d, err := time.ParseDuration(q.resetReq); err == nil {
		q.resetOpen = int64(d / time.Second)
	}
	return q
}

// agree checks that the request quota's numbers are the same in every header that gives them.
func (q quotaHeaderSet) agree(t *testing.T) {
	t.Helper()
	r, s := strconv.FormatInt(q.remainingIETF, 10), strconv.FormatInt(q.resetIETF, 10)
	if q.remaining != r || q.remainingReq != r || q.reset != s || q.resetOpen != q.resetIETF ||
		q.status == http.StatusTooManyRequests && q.retryAfter != s {
		t.Errorf("the headers disagree: %+v", q)
	}
}

// TestQuotaHeadersEveryResponse checks the quota headers of admitted requests, a 429, a
// request refused as malformed and Shadow mode: each response's numbers come from one
// decision per quota, so Retry-After, RateLimit's t, X-RateLimit-Reset and OpenAI's
// x-ratelimit-reset-requests agree; and Retry-After is exact to the second: a second earlier
// the request is refused, at Retry-After it is admitted. The same steps run on the in-process
// limiter and on a real Redis.
func TestQuotaHeadersEveryResponse(t *testing.T) {
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) { testQuotaHeadersEveryResponse(t, backend) })
	}
}

func testQuotaHeadersEveryResponse(t *testing.T, backend string) {
	e := newFakeEngine(t, "engine-model")
	clock := newClock() // 10:00:00, the start of an aligned window
	config := limitConfig(e.srv.URL, `
  policy: qwen3
  limits: {requestsPerMinute: 2, burst: 2, tokensPerMinute: 1000, maxConcurrentRequests: 4}
`)
	if backend == "redis" {
		config += fmt.Sprintf("  redis: {address: %q}\n", redisserver.Start(t).Addr())
	}
	tg := startGatewayWith(t, Options{Now: clock.Now, Logger: quietLogger(), RedisAtNow: true}, config)
	tg.clock = clock
	const body = `{"model":"Qwen3-1.7B","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	send := func() quotaHeaderSet { return readQuotaHeaders(t, tg.post(t, "/v1/chat/completions", body)) }

	first := send()
	first.agree(t)
	want := quotaHeaderSet{
		status: 200, policy: `"qwen3";q=2;w=60, "qwen3-tokens";q=1000;w=60, "qwen3-concurrency";q=4;qu="concurrency"`,
		// The sliding window counts the request until the end of the next window (120 s);
		// the 18 tokens charged (the prompt estimate, 32 bytes / 4, and max_tokens) the same.
		rateLimit: `"qwen3";r=1;t=120, "qwen3-tokens";r=982;t=120`,
		limit:     "2", remaining: "1", reset: "120",
		limitReq: "2", remainingReq: "1", resetReq: "2m0s",
		limitTok: "1000", remainingTok: "982", resetTok: "2m0s",
		remainingIETF: 1, resetIETF: 120, resetOpen: 120,
	}
	if first != want {
		t.Errorf("first response\n got %+v\nwant %+v", first, want)
	}

	clock.Advance(20 * time.Second)
	second := send()
	second.agree(t)
	if second.status != 200 || second.remainingReq != "0" {
		t.Errorf("second: %+v", second)
	}
	// The third is over the sliding window: it fits once the two requests weigh less than one
	// in the window, 70 s on (40 s to the next window, then half of it).
	third := send()
	third.agree(t)
	if third.status != 429 || third.retryAfter != "70" || third.rateLimit != `"qwen3";r=0;t=70` || third.resetReq != "1m10s" ||
		third.remainingTok != "" || third.limitTok != "1000" {
		t.Errorf("third: %+v", third)
	}
	clock.Advance(69 * time.Second)
	if q := send(); q.status != 429 {
		t.Errorf("admitted a second before Retry-After: %+v", q)
	}
	clock.Advance(time.Second)
	if q := send(); q.status != 200 {
		t.Errorf("refused at Retry-After: %+v", q)
	}

	t.Run("a refused request counts and says so", func(t *testing.T) {
		clock.Advance(2 * time.Minute)
		q := readQuotaHeaders(t, tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B"`))
		q.agree(t)
		if q.status != 400 || q.remainingReq == "" || q.rateLimit == "" || q.remainingTok != "" {
			t.Errorf("refused request: %+v", q)
		}
	})
	t.Run("no headers without a decision", func(t *testing.T) {
		resp, err := http.Get(tg.srv.URL + "/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		if q := readQuotaHeaders(t, resp); q.rateLimit != "" || q.policy != "" || q.limitReq != "" {
			t.Errorf("/v1/models: %+v", q)
		}
	})
}

func TestQuotaHeadersShadow(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, newClock(), limitConfig(e.srv.URL, `
  policy: p
  mode: Shadow
  algorithm: FixedWindow
  limits: {requestsPerMinute: 1}
`))
	a := readQuotaHeaders(t, tg.post(t, "/v1/chat/completions", chatBody))
	b := readQuotaHeaders(t, tg.post(t, "/v1/chat/completions", chatBody))
	a.agree(t)
	b.agree(t)
	// Shadow admits the second request, and its headers say what Enforce would: nothing left
	// for a minute; Retry-After belongs to 429s only.
	if a.status != 200 || a.rateLimit != `"p";r=0;t=60` || b.status != 200 || b.rateLimit != `"p";r=0;t=60` ||
		b.resetReq != "1m0s" || b.retryAfter != "" || b.limitTok != "" {
		t.Errorf("shadow:\n%+v\n%+v", a, b)
	}
}

func TestOpenAIDuration(t *testing.T) {
	for secs, want := range map[int64]string{0: "0s", 1: "1s", 59: "59s", 60: "1m0s", 78: "1m18s", 360: "6m0s", 3600: "1h0m0s", 86399: "23h59m59s"} {
		if got := string(appendDuration(nil, secs)); got != want || got != (time.Duration(secs)*time.Second).String() {
			t.Errorf("%d s: %q, want %q", secs, got, want)
		}
	}
}

// BenchmarkQuotaHeaders is the per-response cost of the quota headers of a tier with a
// request and a token quota, on a reused header map (as net/http's are).
//
//	go test -run '^$' -bench QuotaHeaders -benchmem ./internal/gateway/
func BenchmarkQuotaHeaders(b *testing.B) {
	rl := &gatewayconfig.RateLimit{Policy: "qwen3", Limits: gatewayconfig.Limits{RequestsPerMinute: 30, TokensPerMinute: 60000, MaxConcurrentRequests: 4}}
	rl.Default()
	p, err := newPolicy(rl)
	if err != nil {
		b.Fatal(err)
	}
	v := quotaView{t: p.base}
	v.set(0, ratelimit.Decision{Allowed: true, Limit: 30, Remaining: 29, Reset: 118 * time.Second})
	v.set(1, ratelimit.Decision{Allowed: true, Limit: 60000, Remaining: 55904, Reset: 118 * time.Second})
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		v.write(h)
	}
}
