package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

func basicConfig(engineURL string) string {
	return fmt.Sprintf("upstream: {url: %q, model: engine-model}\nmodels: [Qwen3-1.7B]\n", engineURL)
}

func TestProxyNonStreaming(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, nil, basicConfig(e.srv.URL))
	resp := tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"hi"}],"enable_thinking":false,"extra":{"kept":1}}`)
	body := readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var c completion
	if err := json.Unmarshal([]byte(body), &c); err != nil || c.Choices[0]["message"] == nil {
		t.Fatalf("body %s", body)
	}
	up := e.lastBody()
	if up["model"] != "engine-model" {
		t.Errorf("upstream model = %v", up["model"])
	}
	if _, ok := up["enable_thinking"]; ok {
		t.Errorf("top-level enable_thinking forwarded: %v", up)
	}
	if kw, _ := up["chat_template_kwargs"].(map[string]any); kw["enable_thinking"] != false {
		t.Errorf("chat_template_kwargs = %v", up["chat_template_kwargs"])
	}
	if up["extra"] == nil {
		t.Errorf("unknown field dropped: %v", up)
	}
	if resp.Header.Get("X-Qwen-Degradation-Level") != "" {
		t.Errorf("degradation header on a normal response")
	}
	if got := waitMetric(t, tg.Gateway, 7, "qwen_gateway_tokens_total", "direction", "input"); got != 7 {
		t.Errorf("input tokens = %v", got)
	}
	if got := waitMetric(t, tg.Gateway, 1, "qwen_gateway_requests_total", "model", "Qwen3-1.7B", "code", "200", "level", "0"); got != 1 {
		t.Errorf("requests_total = %v", got)
	}
}

func TestProxyStreamingStripsUsageChunk(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, nil, basicConfig(e.srv.URL))
	for _, includeUsage := range []bool{false, true} {
		t.Run(fmt.Sprint("include_usage=", includeUsage), func(t *testing.T) {
			so := ""
			if includeUsage {
				so = `,"stream_options":{"include_usage":true}`
			}
			resp := tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","stream":true,"messages":[{"role":"user","content":"hi"}]`+so+`}`)
			body := readAll(t, resp)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("content type %q", ct)
			}
			data := sseData(body)
			wantN := 4 // 3 chunks + [DONE]
			if includeUsage {
				wantN = 5
			}
			if len(data) != wantN || data[len(data)-1] != "[DONE]" {
				t.Fatalf("events %q", data)
			}
			if includeUsage != strings.Contains(body, `"usage"`) {
				t.Fatalf("usage chunk presence wrong: %s", body)
			}
			so2, _ := e.lastBody()["stream_options"].(map[string]any)
			if so2["include_usage"] != true {
				t.Fatalf("upstream not asked for usage: %v", e.lastBody())
			}
		})
	}
	if got := waitMetric(t, tg.Gateway, 6, "qwen_gateway_tokens_total", "direction", "output"); got != 6 {
		t.Errorf("output tokens = %v, want 6 (usage read from both streams)", got)
	}
	if got := waitMetric(t, tg.Gateway, 2, "qwen_gateway_time_to_first_token_seconds", "model", "Qwen3-1.7B"); got != 2 {
		t.Errorf("ttft samples = %v", got)
	}
}

// TestStreamIsNotBuffered: chunks reach the client while the engine is still generating.
func TestStreamIsNotBuffered(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	e.release = make(chan struct{})
	tg := startGateway(t, nil, basicConfig(e.srv.URL))
	resp := tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	var got []string
	for len(got) < 2 { // the engine holds the last chunk until released
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			got = append(got, line)
		}
	}
	close(e.release)
	rest, _ := io.ReadAll(rd)
	if !strings.Contains(string(rest), `"world"`) || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Fatalf("rest of stream: %q", rest)
	}
}

// TestL1CompletionsAndStaticCompletions covers the /v1/completions shapes at L1 and L4.
func TestL1CompletionsAndStaticCompletions(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, nil, basicConfig(e.srv.URL)+"degradation: {level: 1}\n")
	body := `{"model":"Qwen3-1.7B","prompt":"p","stream":true,"stream_options":{"include_usage":true}}`
	resp := tg.post(t, "/v1/completions", body)
	data := sseData(readAll(t, resp))
	if len(data) != 3 || !strings.Contains(data[0], `"text":"Hello, world"`) || !strings.Contains(data[0], `"object":"text_completion"`) ||
		!strings.Contains(data[1], `"usage":{"prompt_tokens":7`) || data[2] != "[DONE]" || resp.Header.Get("X-Qwen-Degradation-Level") != "1" {
		t.Fatalf("L1 completions stream: %q", data)
	}
	if e.lastBody()["stream"] != false {
		t.Fatal("engine streamed at L1")
	}
	tg.Load([]byte(basicConfig(e.srv.URL) + "degradation: {level: 4, staticResponse: {message: later, httpStatus: 503}}\n"))
	resp = tg.post(t, "/v1/completions", body)
	b := readAll(t, resp)
	if msg, _, _, _ := openAIError(t, b); resp.StatusCode != 503 || msg != "later" {
		t.Fatalf("L4 with a 503 static response: %d %s", resp.StatusCode, b)
	}
	tg.Load([]byte(basicConfig(e.srv.URL) + "degradation: {level: 4}\n"))
	resp = tg.post(t, "/v1/completions", body)
	if b := readAll(t, resp); resp.StatusCode != 503 {
		t.Fatalf("L4 without a static response: %d %s", resp.StatusCode, b)
	}
	tg.Load([]byte(basicConfig(e.srv.URL) + "degradation: {level: 4, staticResponse: {message: later}}\n"))
	resp = tg.post(t, "/v1/completions", `{"model":"Qwen3-1.7B","prompt":"p"}`)
	if b := readAll(t, resp); !strings.Contains(b, `"text":"later"`) || !strings.Contains(b, `"object":"text_completion"`) {
		t.Fatalf("L4 completion: %s", b)
	}
}
