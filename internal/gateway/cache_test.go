package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
)

// cacheGateway starts a gateway in front of a real simulator (echo mode) with API keys alice
// and bob, a breaker that opens at the first failure and stays open (the clock never moves),
// a static reply, and the response cache configured by cacheYAML (under degradation).
func cacheGateway(t *testing.T, extra, cacheYAML string, level int) (*testGateway, *simulator.Sim) {
	t.Helper()
	sim := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B", Mode: "echo"})
	dir := t.TempDir()
	writeKey(t, dir, "alice", "sk-alice")
	writeKey(t, dir, "bob", "sk-bob")
	cfg := fmt.Sprintf(`upstream: {url: %q, model: Qwen3-1.7B}
auth: {keysDir: %q}
breaker: {failureThreshold: 1, recoveryTimeout: 1h}
degradation:
  level: %d
  staticResponse: {message: "服务繁忙，请稍后再试"}
  cache: %s
%s`, sim.URL, dir, level, cacheYAML, extra)
	return startGateway(t, newClock(), cfg), sim
}

const (
	askA       = `{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"what is a token bucket"}],"max_tokens":20}`
	askASpaced = `{ "max_tokens": 20, "messages": [ {"role":"user","content":"what is a token bucket"} ], "model": "Qwen3-1.7B" }`
	askAStream = `{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"what is a token bucket"}],"max_tokens":20,"stream":true,"stream_options":{"include_usage":true}}`
	askBStream = `{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"streamed question"}],"max_tokens":20,"stream":true}`
	askB       = `{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"streamed question"}],"max_tokens":20}`
	askC       = `{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"never asked before"}],"max_tokens":20}`
)

func bearer(key string) []string { return []string{"Authorization", "Bearer " + key} }

// chatContent is the assistant content of a chat completion body.
func chatContent(t *testing.T, body string) string {
	t.Helper()
	var c struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(body), &c); err != nil || len(c.Choices) != 1 {
		t.Fatalf("not a chat completion: %s", body)
	}
	return c.Choices[0].Message.Content
}

// streamContent joins the delta contents of an event stream and checks it ends with [DONE].
func streamContent(t *testing.T, body string) string {
	t.Helper()
	data := sseData(body)
	if len(data) == 0 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", body)
	}
	var b strings.Builder
	for _, d := range data[:len(data)-1] {
		var ch struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(d), &ch); err != nil {
			t.Fatalf("bad chunk %q", d)
		}
		for _, c := range ch.Choices {
			b.WriteString(c.Delta.Content)
		}
	}
	return b.String()
}

// fillAndBreak answers askA (non-streaming) and askBStream for alice through the simulator,
// then makes the simulator fail so that the primary's breaker opens.
func fillAndBreak(t *testing.T, tg *testGateway, sim *simulator.Sim) {
	t.Helper()
	resp := tg.post(t, "/v1/chat/completions", askA, bearer("sk-alice")...)
	if body := readAll(t, resp); resp.StatusCode != 200 || chatContent(t, body) != "what is a token bucket" || resp.Header.Get("X-Qwen-Cache") != "" {
		t.Fatalf("fill A: %d %q cache=%q", resp.StatusCode, body, resp.Header.Get("X-Qwen-Cache"))
	}
	resp = tg.post(t, "/v1/chat/completions", askBStream, bearer("sk-alice")...)
	if body := readAll(t, resp); resp.StatusCode != 200 || streamContent(t, body) != "streamed question" {
		t.Fatalf("fill B: %d %q", resp.StatusCode, body)
	}
	sim.SetFailures(t, 100, "server_error")
	resp = tg.post(t, "/v1/chat/completions", askC, bearer("sk-alice")...)
	if body := readAll(t, resp); resp.StatusCode < 500 {
		t.Fatalf("injected failure: %d %s", resp.StatusCode, body)
	}
	if got := metricValue(t, tg.Gateway, "qwen_gateway_upstream_circuit_state", "upstream", "primary"); got != 2 {
		t.Fatalf("breaker state %v, want open (2)", got)
	}
}

// TestCacheServesWhileBreakerOpen: with the primary's breaker open and no fallback, questions
// answered before come from the cache (marked, as JSON or SSE as asked, whichever way they
// were filled), new questions get the static reply, and another API key never sees alice's
// answers. Memory and Redis backends behave the same.
func TestCacheServesWhileBreakerOpen(t *testing.T) {
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			cache, extra := "{enabled: true}", ""
			if backend == "redis" {
				srv := redisserver.Start(t)
				cache = "{backend: Redis}"
				extra = fmt.Sprintf("rateLimit: {policy: p, key: {source: APIKey}, redis: {address: %q}}\n", srv.Addr())
			}
			tg, sim := cacheGateway(t, extra, strings.Replace(cache, "enabled: true", "", 1), 0)
			fillAndBreak(t, tg, sim)

			hit := func(name, body, key string, stream bool, want string) {
				t.Helper()
				resp := tg.post(t, "/v1/chat/completions", body, bearer(key)...)
				got := readAll(t, resp)
				h := resp.Header
				if resp.StatusCode != 200 || h.Get("X-Qwen-Cache") != "hit" || h.Get("X-Qwen-Degradation-Level") != "0" || h.Get("X-Qwen-Upstream") != "cache" {
					t.Fatalf("%s: %d cache=%q level=%q upstream=%q %s", name, resp.StatusCode, h.Get("X-Qwen-Cache"), h.Get("X-Qwen-Degradation-Level"), h.Get("X-Qwen-Upstream"), got)
				}
				content := ""
				if stream {
					if !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
						t.Fatalf("%s: content type %q", name, h.Get("Content-Type"))
					}
					content = streamContent(t, got)
				} else {
					content = chatContent(t, got)
				}
				if content != want {
					t.Fatalf("%s: content %q, want %q", name, content, want)
				}
				if !strings.Contains(got, `"system_fingerprint":"qwen-cache"`) {
					t.Fatalf("%s: a cached reply without system_fingerprint qwen-cache: %s", name, got)
				}
			}
			hit("non-streaming fill, same question", askA, "sk-alice", false, "what is a token bucket")
			hit("other spacing and field order", askASpaced, "sk-alice", false, "what is a token bucket")
			hit("non-streaming fill, asked as a stream", askAStream, "sk-alice", true, "what is a token bucket")
			hit("streaming fill, asked whole", askB, "sk-alice", false, "streamed question")
			hit("streaming fill, asked as a stream", askBStream, "sk-alice", true, "streamed question")

			static := func(name, body, key string) {
				t.Helper()
				resp := tg.post(t, "/v1/chat/completions", body, bearer(key)...)
				got := readAll(t, resp)
				if resp.StatusCode != 200 || resp.Header.Get("X-Qwen-Cache") != "miss" || resp.Header.Get("X-Qwen-Upstream") != "static" ||
					chatContent(t, got) != "服务繁忙，请稍后再试" {
					t.Fatalf("%s: %d cache=%q upstream=%q %s", name, resp.StatusCode, resp.Header.Get("X-Qwen-Cache"), resp.Header.Get("X-Qwen-Upstream"), got)
				}
			}
			static("never answered", askC, "sk-alice")
			static("other API key", askA, "sk-bob")
			if got := metricValue(t, tg.Gateway, "qwen_gateway_cache_lookups_total", "result", "hit"); got != 5 {
				t.Errorf("cache hits = %v, want 5", got)
			}
			if got := metricValue(t, tg.Gateway, "qwen_gateway_cache_lookups_total", "result", "miss"); got != 2 {
				t.Errorf("cache misses = %v, want 2", got)
			}
			if got := metricValue(t, tg.Gateway, "qwen_gateway_cache_stored_bytes_total"); got == 0 {
				t.Error("stored bytes not counted")
			}
			mem := metricValue(t, tg.Gateway, "qwen_gateway_cache_bytes")
			if backend == "memory" && mem == 0 || backend == "redis" && mem != 0 {
				t.Errorf("cache_bytes = %v with %s", mem, backend)
			}
		})
	}
}

// TestCacheSharedAcrossKeysWhenAllowed: shareAcrossKeys lets bob get the answer alice filled.
func TestCacheSharedAcrossKeysWhenAllowed(t *testing.T) {
	tg, sim := cacheGateway(t, "", "{shareAcrossKeys: true}", 0)
	fillAndBreak(t, tg, sim)
	resp := tg.post(t, "/v1/chat/completions", askA, bearer("sk-bob")...)
	if body := readAll(t, resp); resp.Header.Get("X-Qwen-Cache") != "hit" || chatContent(t, body) != "what is a token bucket" {
		t.Fatalf("bob: cache=%q %s", resp.Header.Get("X-Qwen-Cache"), body)
	}
}

// TestCacheNotUsedWhileUpstreamAnswers: a cached question asked while the engine is healthy
// goes to the engine.
func TestCacheNotUsedWhileUpstreamAnswers(t *testing.T) {
	tg, _ := cacheGateway(t, "", "{}", 0)
	for range 2 {
		resp := tg.post(t, "/v1/chat/completions", askA, bearer("sk-alice")...)
		if body := readAll(t, resp); resp.StatusCode != 200 || resp.Header.Get("X-Qwen-Cache") != "" || resp.Header.Get("X-Qwen-Upstream") != "primary" {
			t.Fatalf("%d cache=%q upstream=%q %s", resp.StatusCode, resp.Header.Get("X-Qwen-Cache"), resp.Header.Get("X-Qwen-Upstream"), body)
		}
	}
}

// TestCacheAtLevel4 serves cached answers at L4 only when serveAtLevel4 says so.
func TestCacheAtLevel4(t *testing.T) {
	for _, at4 := range []bool{false, true} {
		t.Run(fmt.Sprint("serveAtLevel4=", at4), func(t *testing.T) {
			tg, _ := cacheGateway(t, "", fmt.Sprintf("{serveAtLevel4: %v}", at4), 0)
			resp := tg.post(t, "/v1/chat/completions", askA, bearer("sk-alice")...)
			readAll(t, resp)
			cfg := *tg.Config()
			cfg.Degradation.Level = 4
			if err := tg.Apply(&cfg); err != nil {
				t.Fatal(err)
			}
			resp = tg.post(t, "/v1/chat/completions", askAStream, bearer("sk-alice")...)
			body := readAll(t, resp)
			want, wantCache := "服务繁忙，请稍后再试", ""
			if at4 {
				want, wantCache = "what is a token bucket", "hit"
			}
			if got := streamContent(t, body); got != want || resp.Header.Get("X-Qwen-Cache") != wantCache || resp.Header.Get("X-Qwen-Degradation-Level") != "4" {
				t.Fatalf("content %q cache=%q level=%q, want %q %q 4", got, resp.Header.Get("X-Qwen-Cache"), resp.Header.Get("X-Qwen-Degradation-Level"), want, wantCache)
			}
		})
	}
}

// TestCacheKeepsFailedAnswersOut: an engine error is not cached, so the request gets the
// static reply later.
func TestCacheKeepsFailedAnswersOut(t *testing.T) {
	tg, sim := cacheGateway(t, "", "{}", 0)
	sim.SetFailures(t, 100, "server_error")
	resp := tg.post(t, "/v1/chat/completions", askA, bearer("sk-alice")...)
	readAll(t, resp)
	resp = tg.post(t, "/v1/chat/completions", askA, bearer("sk-alice")...)
	if body := readAll(t, resp); resp.Header.Get("X-Qwen-Cache") != "miss" || chatContent(t, body) != "服务繁忙，请稍后再试" {
		t.Fatalf("cache=%q %s", resp.Header.Get("X-Qwen-Cache"), body)
	}
}

// TestCacheWithoutStaticReply: with no static reply, a miss is still 503 and a hit is 200.
func TestCacheWithoutStaticReply(t *testing.T) {
	sim := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B", Mode: "echo"})
	tg := startGateway(t, newClock(), fmt.Sprintf("upstream: {url: %q, model: Qwen3-1.7B}\nbreaker: {failureThreshold: 1, recoveryTimeout: 1h}\ndegradation: {cache: {}}\n", sim.URL))
	readAll(t, tg.post(t, "/v1/chat/completions", askA))
	sim.SetFailures(t, 100, "server_error")
	readAll(t, tg.post(t, "/v1/chat/completions", askC))
	if resp := tg.post(t, "/v1/chat/completions", askA); resp.StatusCode != 200 || resp.Header.Get("X-Qwen-Cache") != "hit" {
		t.Fatalf("hit: %d %s", resp.StatusCode, readAll(t, resp))
	}
	if resp := tg.post(t, "/v1/chat/completions", askB); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Qwen-Cache") != "miss" {
		t.Fatalf("miss: %d %s", resp.StatusCode, readAll(t, resp))
	}
}

// TestFallbackUnavailableFallsThrough: the operator marks a fallback without ready endpoints
// unavailable. With the primary's breaker open the request then gets the cached answer or the
// static reply, never a 502 from a fallback that cannot answer, and the fallback is not called;
// at level 3 the primary serves (level 3 acts as level 2).
func TestFallbackUnavailableFallsThrough(t *testing.T) {
	fb := newFakeEngine(t, "Qwen3-0.6B")
	extra := fmt.Sprintf("fallback: {url: %q, model: Qwen3-0.6B}\n", fb.srv.URL)
	tg, sim := cacheGateway(t, extra, "{}", 0)
	cfg := *tg.Config()
	no := false
	cfg.Degradation.FallbackAvailable = &no
	if err := tg.Apply(&cfg); err != nil {
		t.Fatal(err)
	}
	fillAndBreak(t, tg, sim)
	resp := tg.post(t, "/v1/chat/completions", askA, bearer("sk-alice")...)
	if body := readAll(t, resp); resp.StatusCode != 200 || resp.Header.Get("X-Qwen-Cache") != "hit" {
		t.Fatalf("cached question: %d cache=%q %s", resp.StatusCode, resp.Header.Get("X-Qwen-Cache"), body)
	}
	resp = tg.post(t, "/v1/chat/completions", askC, bearer("sk-alice")...)
	if body := readAll(t, resp); resp.StatusCode != 200 || resp.Header.Get("X-Qwen-Upstream") != "static" || chatContent(t, body) != "服务繁忙，请稍后再试" {
		t.Fatalf("new question: %d upstream=%q %s", resp.StatusCode, resp.Header.Get("X-Qwen-Upstream"), body)
	}
	if n := fb.calls.Load(); n != 0 {
		t.Fatalf("the unavailable fallback was called %d times", n)
	}

	// Level 3 with the fallback unavailable: the primary answers, thinking off.
	sim.SetFailures(t, 0)
	tg2, _ := cacheGateway(t, extra, "{}", 3)
	cfg = *tg2.Config()
	cfg.Degradation.FallbackAvailable = &no
	if err := tg2.Apply(&cfg); err != nil {
		t.Fatal(err)
	}
	resp = tg2.post(t, "/v1/chat/completions", askC, bearer("sk-alice")...)
	if body := readAll(t, resp); resp.StatusCode != 200 || resp.Header.Get("X-Qwen-Upstream") != "primary" || resp.Header.Get("X-Qwen-Degradation-Level") != "3" {
		t.Fatalf("L3: %d upstream=%q level=%q %s", resp.StatusCode, resp.Header.Get("X-Qwen-Upstream"), resp.Header.Get("X-Qwen-Degradation-Level"), body)
	}
	if n := fb.calls.Load(); n != 0 {
		t.Fatalf("the unavailable fallback was called %d times at L3", n)
	}
}
