package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

func mustParse(t testing.TB, ep endpoint, body string) *request {
	t.Helper()
	r, aerr := parseRequest(ep, "application/json", []byte(body))
	if aerr != nil {
		t.Fatal(aerr.message)
	}
	return r
}

// TestCacheKey: stream settings, spacing and field order do not change the key; any other
// field, the endpoint and the API key (unless shared) do.
func TestCacheKey(t *testing.T) {
	c := &responseCache{}
	shared := &responseCache{share: true}
	base := `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5}`
	k := c.key(mustParse(t, chatEndpoint, base), "alice")
	same := []string{
		`{"messages":[{"role":"user","content":"hi"}], "temperature": 0.5, "model":"m"}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"m","messages":[ {"role": "user", "content": "hi"} ],"temperature":0.5,"stream":false}`,
	}
	for _, b := range same {
		if got := c.key(mustParse(t, chatEndpoint, b), "alice"); got != k {
			t.Errorf("key of %s differs", b)
		}
	}
	differ := []string{
		`{"model":"m","messages":[{"role":"user","content":"hi!"}],"temperature":0.5}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.6}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"enable_thinking":false}`,
		`{"model":"m2","messages":[{"role":"user","content":"hi"}],"temperature":0.5}`,
	}
	for _, b := range differ {
		if got := c.key(mustParse(t, chatEndpoint, b), "alice"); got == k {
			t.Errorf("key of %s is the same", b)
		}
	}
	if c.key(mustParse(t, chatEndpoint, base), "bob") == k {
		t.Error("another API key gets the same key")
	}
	if shared.key(mustParse(t, chatEndpoint, base), "bob") != shared.key(mustParse(t, chatEndpoint, base), "alice") {
		t.Error("shareAcrossKeys: keys differ per API key")
	}
	comp := `{"model":"m","prompt":"hi","temperature":0.5}`
	if c.key(mustParse(t, completionsEndpoint, comp), "alice") == c.key(mustParse(t, chatEndpoint, base), "alice") {
		t.Error("endpoints share keys")
	}
	var none *responseCache
	if none.key(mustParse(t, chatEndpoint, base), "alice") != "" {
		t.Error("no cache: key not empty")
	}
}

func TestAssembleStream(t *testing.T) {
	chunk := func(choices string) string {
		return `data: {"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":` + choices + "}\n\n"
	}
	tests := []struct {
		name   string
		ep     endpoint
		stream string
		want   string // "" when not assembled
	}{
		{"content and reasoning", chatEndpoint,
			chunk(`[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]`) +
				chunk(`[{"index":0,"delta":{"reasoning_content":"think "},"finish_reason":null}]`) +
				chunk(`[{"index":0,"delta":{"reasoning_content":"more"},"finish_reason":null}]`) +
				chunk(`[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]`) +
				chunk(`[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}]`) + "data: [DONE]\n\n",
			`{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"Hi there","reasoning_content":"think more","role":"assistant"}}],"created":5,"id":"c1","model":"m","object":"chat.completion","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`},
		{"two choices", chatEndpoint,
			chunk(`[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]`) +
				chunk(`[{"index":1,"delta":{"content":"B"},"finish_reason":"length"},{"index":0,"delta":{"content":"A"},"finish_reason":"stop"}]`) + "data: [DONE]\n\n",
			`{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"aA","role":"assistant"}},{"finish_reason":"length","index":1,"logprobs":null,"message":{"content":"bB","role":"assistant"}}],"created":5,"id":"c1","model":"m","object":"chat.completion","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`},
		{"completions", completionsEndpoint,
			`data: {"id":"c2","object":"text_completion","created":5,"model":"m","choices":[{"index":0,"text":"once ","logprobs":null,"finish_reason":null,"stop_reason":null}]}` + "\n\n" +
				`data: {"id":"c2","object":"text_completion","created":5,"model":"m","choices":[{"index":0,"text":"upon","logprobs":null,"finish_reason":"length","stop_reason":null}]}` + "\n\ndata: [DONE]\n\n",
			`{"choices":[{"finish_reason":"length","index":0,"logprobs":null,"text":"once upon"}],"created":5,"id":"c2","model":"m","object":"text_completion","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`},
		{"tool calls are not assembled", chatEndpoint,
			chunk(`[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f"}}]}}]`) + "data: [DONE]\n\n", ""},
		{"logprobs are not assembled", chatEndpoint,
			chunk(`[{"index":0,"delta":{"content":"a"},"logprobs":{"content":[]}}]`) + "data: [DONE]\n\n", ""},
		{"an error event is not assembled", chatEndpoint,
			chunk(`[{"index":0,"delta":{"content":"a"}}]`) + `data: {"error":{"message":"cut"}}` + "\n\n", ""},
		{"no choices", chatEndpoint, "data: [DONE]\n\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := assembleStream(tt.ep, []byte(tt.stream), &usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3})
			if tt.want == "" {
				if ok {
					t.Fatalf("assembled %s", got)
				}
				return
			}
			if !ok || string(got) != tt.want {
				t.Fatalf("got %v %s\nwant %s", ok, got, tt.want)
			}
			// What is stored must convert back to a stream for streaming clients.
			if _, _, err := completionToSSE(tt.ep, got, true, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCacheRedisDownIsAMiss: with the cache's Redis gone, a lookup is an error counted as
// such, and the request gets the static reply at once.
func TestCacheRedisDownIsAMiss(t *testing.T) {
	srv := redisserver.Start(t)
	tg, sim := cacheGateway(t, fmt.Sprintf("rateLimit: {policy: p, key: {source: APIKey}, redis: {address: %q}}\n", srv.Addr()), "{backend: Redis}", 0)
	fillAndBreak(t, tg, sim)
	srv.Stop()
	resp := tg.post(t, "/v1/chat/completions", askA, bearer("sk-alice")...)
	if body := readAll(t, resp); resp.Header.Get("X-Qwen-Cache") != "miss" || chatContent(t, body) != "服务繁忙，请稍后再试" {
		t.Fatalf("cache=%q %s", resp.Header.Get("X-Qwen-Cache"), body)
	}
	if got := metricValue(t, tg.Gateway, "qwen_gateway_cache_lookups_total", "result", "error"); got != 1 {
		t.Fatalf("lookup errors = %v", got)
	}
}

// BenchmarkCacheHit is the latency of an answer served from the response cache while the
// primary's breaker is open, over loopback HTTP, non-streaming and as a stream, for both
// backends (a real redis-server for Redis).
//
//	go test -run '^$' -bench CacheHit -benchtime 2000x ./internal/gateway/
func BenchmarkCacheHit(b *testing.B) {
	e := newFakeEngine(b, "Qwen3-1.7B")
	e.chunks = []string{strings.Repeat("A cached answer of about a kilobyte. ", 28)}
	srv := redisserver.Start(b)
	for _, backend := range []string{"memory", "redis"} {
		cache := "{}"
		extra := ""
		if backend == "redis" {
			cache = "{backend: Redis}"
			extra = fmt.Sprintf("rateLimit: {policy: p, limits: {requestsPerMinute: 1000000, burst: 1000000}, redis: {address: %q}}\n", srv.Addr())
		}
		tg := startGateway(b, newClock(), fmt.Sprintf("upstream: {url: %q, model: Qwen3-1.7B}\nbreaker: {failureThreshold: 1, recoveryTimeout: 1h}\ndegradation: {staticResponse: {message: busy}, cache: %s}\n%s", e.srv.URL, cache, extra))
		c := benchClient()
		post := func(body string) *http.Response {
			resp, err := c.Post(tg.srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		post(benchChat)
		e.status.Store(500)
		post(`{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"breaks the breaker"}]}`)
		e.status.Store(0)
		for _, stream := range []bool{false, true} {
			body, name := benchChat, backend
			if stream {
				body, name = benchStream, backend+"/stream"
			}
			b.Run(name, func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				b.ReportAllocs()
				for b.Loop() {
					start := time.Now()
					resp := post(body)
					lat = append(lat, time.Since(start))
					if resp.Header.Get("X-Qwen-Cache") != "hit" {
						b.Fatalf("not a hit: %d %v", resp.StatusCode, resp.Header)
					}
				}
				reportLatency(b, lat, "")
			})
		}
	}
}

// BenchmarkCacheKey is the per-request cost of the cache key while the cache is on (every
// request computes it, to fill the cache): the same 638-byte body as BenchmarkParseAndRewrite.
func BenchmarkCacheKey(b *testing.B) {
	body := `{"model":"Qwen3-1.7B","stream":true,"enable_thinking":false,"max_tokens":256,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"` + strings.Repeat("Explain token buckets. ", 20) + `"}]}`
	req := mustParse(b, chatEndpoint, body)
	c := &responseCache{}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if c.key(req, "alice") == "" {
			b.Fatal("no key")
		}
	}
}
