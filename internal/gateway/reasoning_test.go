package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// thinkingEngine answers like vLLM with --reasoning-parser qwen3: reasoning_content in the
// message of a whole answer and in the deltas of a stream, then the content; usage 10 + 6.
func thinkingEngine(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		usage := `{"prompt_tokens":10,"completion_tokens":6,"total_tokens":16}`
		if body["stream"] != true {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","created":1,"model":"engine-model","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":"用户问我是谁 <think>","content":"我是通义千问。"},"finish_reason":"stop"}],"usage":%s}`, usage)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, delta := range []string{
			`{"role":"assistant","content":""}`,
			`{"reasoning_content":"用户问"}`,
			`{"reasoning_content":"我是谁"}`,
			`{"content":"我是"}`,
			`{"content":"通义千问。"}`,
		} {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"engine-model\",\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":null}]}\n\n", delta)
		}
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"engine-model\",\"choices\":[],\"usage\":%s}\n\n", usage)
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// langChainBody is what the seed's client sends (langchain_openai ChatOpenAI with
// extra_body={"enable_thinking": True, "return_reasoning": ...}, streaming=True).
func langChainBody(stream bool, returnReasoning string) string {
	rr := ""
	if returnReasoning != "" {
		rr = `,"return_reasoning":` + returnReasoning
	}
	return fmt.Sprintf(`{"messages":[{"content":"你是谁?","role":"user"}],"model":"Qwen3-1.7B","stream":%t,"temperature":0.5,"enable_thinking":true%s}`, stream, rr)
}

// TestReturnReasoning: return_reasoning false removes the reasoning from the whole answer and
// from every delta of a stream, keeping the content and counting the tokens; true or absent
// passes it through; a non-boolean is a 400 naming the field.
func TestReturnReasoning(t *testing.T) {
	engine := thinkingEngine(t)
	tg := startGateway(t, nil, basicConfig(engine.URL))
	for _, c := range []struct {
		stream    bool
		rr        string
		reasoning bool
	}{
		{false, "false", false}, {true, "false", false},
		{false, "true", true}, {true, "true", true},
		{false, "", true}, {true, "", true},
	} {
		name := fmt.Sprintf("stream=%t return_reasoning=%q", c.stream, c.rr)
		resp := tg.post(t, "/v1/chat/completions", langChainBody(c.stream, c.rr))
		body := readAll(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, body)
		}
		if got := strings.Contains(body, "reasoning_content"); got != c.reasoning {
			t.Errorf("%s: reasoning in the answer %v, want %v:\n%s", name, got, c.reasoning, body)
		}
		content := "我是通义千问。"
		if c.stream {
			content = ""
			for _, d := range sseData(body) {
				var ch struct {
					Choices []struct{ Delta map[string]any } `json:"choices"`
				}
				if d == "[DONE]" {
					continue
				}
				if err := json.Unmarshal([]byte(d), &ch); err != nil {
					t.Fatalf("%s: chunk %q: %v", name, d, err)
				}
				for _, x := range ch.Choices {
					if s, ok := x.Delta["content"].(string); ok {
						content += s
					}
				}
			}
		} else if !strings.Contains(body, `"content":"我是通义千问。"`) {
			t.Errorf("%s: content lost: %s", name, body)
		}
		if content != "我是通义千问。" {
			t.Errorf("%s: content %q", name, content)
		}
	}
	if got := waitMetric(t, tg.Gateway, 6*6, "qwen_gateway_tokens_total", "direction", "output"); got != 6*6 {
		t.Errorf("output tokens counted %v, want 36 (reasoning counted whether shown or not)", got)
	}
	resp := tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"x"}],"return_reasoning":"no"}`)
	body := readAll(t, resp)
	if _, _, param, _ := openAIError(t, body); resp.StatusCode != 400 || param != "return_reasoning" {
		t.Errorf("return_reasoning \"no\": %d %s", resp.StatusCode, body)
	}
}

// TestReturnReasoningFalseAtL1: at L1 the engine answers whole and the gateway streams it;
// the reasoning is removed from that stream too.
func TestReturnReasoningFalseAtL1(t *testing.T) {
	engine := thinkingEngine(t)
	tg := startGateway(t, nil, basicConfig(engine.URL)+"degradation: {level: 1}\n")
	resp := tg.post(t, "/v1/chat/completions", langChainBody(true, "false"))
	body := readAll(t, resp)
	if resp.StatusCode != 200 || strings.Contains(body, "reasoning") || !strings.Contains(body, "我是通义千问。") {
		t.Errorf("L1 stream: %d %s", resp.StatusCode, body)
	}
}

// TestReturnReasoningFalseFromCache: the cache keeps the engine's answer, reasoning included;
// a request with return_reasoning false served from it at L4 gets the answer without it,
// whole and as a stream.
func TestReturnReasoningFalseFromCache(t *testing.T) {
	engine := thinkingEngine(t)
	tg := startGateway(t, nil, fmt.Sprintf(`upstream: {url: %q, model: Qwen3-1.7B}
degradation:
  staticResponse: {message: static}
  cache: {serveAtLevel4: true}
`, engine.URL))
	fill := tg.post(t, "/v1/chat/completions", langChainBody(false, "false"))
	if body := readAll(t, fill); fill.StatusCode != 200 || strings.Contains(body, "reasoning_content") {
		t.Fatalf("fill: %d %s", fill.StatusCode, body)
	}
	cfg := *tg.Config()
	cfg.Degradation.Level = 4
	if err := tg.Apply(&cfg); err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		resp := tg.post(t, "/v1/chat/completions", langChainBody(stream, "false"))
		body := readAll(t, resp)
		if resp.StatusCode != 200 || resp.Header.Get("X-Qwen-Cache") != "hit" || !strings.Contains(body, "我是通义千问") {
			t.Fatalf("stream=%t: %d cache=%q %s", stream, resp.StatusCode, resp.Header.Get("X-Qwen-Cache"), body)
		}
		if strings.Contains(body, "reasoning_content") {
			t.Errorf("stream=%t: a cached answer kept the reasoning the client asked to remove:\n%s", stream, body)
		}
	}
}
