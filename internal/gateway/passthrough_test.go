package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
)

// TestResponsesAndEmbeddingsPassThrough sends /v1/responses (whole and streamed) and
// /v1/embeddings with the OpenAI SDK through the gateway to a real simulator
// (llm-d-inference-sim serves both), behind an API key and limits, and checks that they get
// what the completions get: authentication, the request and token quotas (shared with the
// completions, trued up from the Responses API's input_tokens/output_tokens), the quota
// headers, the metrics (requests, tokens, time to first token), the breaker and the levels.
func TestResponsesAndEmbeddingsPassThrough(t *testing.T) {
	sim := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B", Mode: "echo"})
	fb := simulator.Start(t, simulator.Options{Model: "Qwen3-0.6B", Mode: "echo"})
	tp := newTap(t, sim)
	dir := t.TempDir()
	writeKey(t, dir, "app", "sk-app")
	base := fmt.Sprintf("upstream: {url: %q, model: Qwen3-1.7B}\nfallback: {url: %q, model: Qwen3-0.6B}\nauth: {keysDir: %q}\n", tp.srv.URL, fb.URL, dir)
	limits := "rateLimit: {policy: p, key: {source: APIKey}, algorithm: FixedWindow, limits: {requestsPerMinute: 6, tokensPerMinute: 100000}}\n"
	tg := startGateway(t, newClock(), base+limits)
	client := sdkClient(tg.srv.URL, option.WithAPIKey("sk-app"))
	ctx := context.Background()

	t.Run("no key, no answer", func(t *testing.T) {
		for _, path := range []string{"/v1/responses", "/v1/embeddings"} {
			resp := tg.post(t, path, `{"model":"Qwen3-1.7B","input":"hi"}`)
			if b := readAll(t, resp); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s without a key: %d %s", path, resp.StatusCode, b)
			}
		}
	})

	var quota []string // x-ratelimit-remaining-requests, one per request
	record := func(r *http.Response, err error) error {
		if err == nil {
			quota = append(quota, r.Header.Get("x-ratelimit-remaining-requests"))
		}
		return err
	}
	t.Run("responses", func(t *testing.T) {
		var raw *http.Response
		r, err := client.Responses.New(ctx, responses.ResponseNewParams{
			Model: "Qwen3-1.7B", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello responses")},
			MaxOutputTokens: openai.Int(20),
		}, option.WithResponseInto(&raw))
		if err := record(raw, err); err != nil {
			t.Fatal(err)
		}
		if r.OutputText() != "hello responses" || r.Usage.InputTokens == 0 || r.Usage.OutputTokens == 0 {
			t.Errorf("response %q usage %+v", r.OutputText(), r.Usage)
		}
		if raw.Header.Get("X-Qwen-Upstream") != "primary" || raw.Header.Get("RateLimit") == "" {
			t.Errorf("headers %v", raw.Header)
		}
		if got := tp.last(); got["model"] != "Qwen3-1.7B" || got["input"] != "hello responses" || got["stream_options"] != nil {
			t.Errorf("upstream body %v", got)
		}
	})
	t.Run("responses streamed", func(t *testing.T) {
		var raw *http.Response
		s := client.Responses.NewStreaming(ctx, responses.ResponseNewParams{
			Model: "Qwen3-1.7B", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("stream the response")},
		}, option.WithResponseInto(&raw))
		var text strings.Builder
		var done *responses.Response
		for s.Next() {
			switch ev := s.Current(); ev.Type {
			case "response.output_text.delta":
				text.WriteString(ev.Delta)
			case "response.completed":
				r := ev.Response
				done = &r
			}
		}
		if err := record(raw, s.Err()); err != nil {
			t.Fatal(err)
		}
		if text.String() != "stream the response" || done == nil || done.Usage.OutputTokens == 0 {
			t.Errorf("streamed %q, completed %+v", text.String(), done)
		}
		if ct := raw.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("content type %q", ct)
		}
	})
	t.Run("embeddings", func(t *testing.T) {
		var raw *http.Response
		e, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: "Qwen3-1.7B", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"one", "two"}},
		}, option.WithResponseInto(&raw))
		if err := record(raw, err); err != nil {
			t.Fatal(err)
		}
		if len(e.Data) != 2 || len(e.Data[0].Embedding) == 0 || e.Usage.PromptTokens == 0 {
			t.Errorf("embeddings %d usage %+v", len(e.Data), e.Usage)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		if got := waitMetric(t, tg.Gateway, 3, "qwen_gateway_requests_total", "code", "200", "upstream", "primary"); got != 3 {
			t.Errorf("requests_total{code=200} = %v", got)
		}
		if metricValue(t, tg.Gateway, "qwen_gateway_tokens_total", "direction", "input") == 0 ||
			metricValue(t, tg.Gateway, "qwen_gateway_tokens_total", "direction", "output") == 0 {
			t.Error("no tokens counted")
		}
		if got := metricValue(t, tg.Gateway, "qwen_gateway_time_to_first_token_seconds"); got != 1 {
			t.Errorf("time to first token observed %v times, want 1 (the streamed Response)", got)
		}
	})
	t.Run("one request quota for every endpoint", func(t *testing.T) {
		for _, body := range []string{`{"model":"Qwen3-1.7B","max_tokens":3,"messages":[{"role":"user","content":"x"}]}`} {
			resp := tg.post(t, "/v1/chat/completions", body, "Authorization", "Bearer sk-app")
			readAll(t, resp)
			quota = append(quota, resp.Header.Get("x-ratelimit-remaining-requests"))
		}
		for range 3 {
			resp := tg.post(t, "/v1/embeddings", `{"model":"Qwen3-1.7B","input":"x"}`, "Authorization", "Bearer sk-app")
			readAll(t, resp)
			quota = append(quota, resp.Header.Get("x-ratelimit-remaining-requests")+"/"+fmt.Sprint(resp.StatusCode))
		}
		if got := strings.Join(quota, " "); got != "5 4 3 2 1/200 0/200 0/429" {
			t.Errorf("remaining requests %s", got)
		}
	})

	tg.clock.Advance(2 * 60e9)
	t.Run("L3: Responses to the fallback, embeddings stay on the primary", func(t *testing.T) {
		if err := tg.Load([]byte(base + "degradation: {level: 3}\n")); err != nil {
			t.Fatal(err)
		}
		resp := tg.post(t, "/v1/responses", `{"model":"Qwen3-1.7B","input":"hi","stream":true}`, "Authorization", "Bearer sk-app")
		b := readAll(t, resp)
		if resp.StatusCode != 200 || resp.Header.Get("X-Qwen-Upstream") != "fallback" || resp.Header.Get("X-Qwen-Degradation-Level") != "3" ||
			!strings.Contains(b, "response.completed") || !strings.Contains(b, "Qwen3-0.6B") {
			t.Errorf("responses at L3: %d %v %s", resp.StatusCode, resp.Header, b)
		}
		resp = tg.post(t, "/v1/embeddings", `{"model":"Qwen3-1.7B","input":"hi"}`, "Authorization", "Bearer sk-app")
		if b := readAll(t, resp); resp.StatusCode != 200 || resp.Header.Get("X-Qwen-Upstream") != "primary" || strings.Contains(b, "system_fingerprint") {
			t.Errorf("embeddings at L3: %d %v %s", resp.StatusCode, resp.Header, b)
		}
	})
	t.Run("L4: the static reply as an error", func(t *testing.T) {
		if err := tg.Load([]byte(base + "degradation: {level: 4, staticResponse: {message: busy}}\n")); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/v1/responses", "/v1/embeddings"} {
			resp := tg.post(t, path, `{"model":"Qwen3-1.7B","input":"hi"}`, "Authorization", "Bearer sk-app")
			b := readAll(t, resp)
			msg, _, _, code := openAIError(t, b)
			if resp.StatusCode != 503 || msg != "busy" || code != "degraded" || resp.Header.Get("X-Qwen-Upstream") != "static" {
				t.Errorf("%s at L4: %d %s", path, resp.StatusCode, b)
			}
		}
	})
	t.Run("breaker: the primary down", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := "http://" + l.Addr().String()
		l.Close()
		cfg := fmt.Sprintf("upstream: {url: %q, model: Qwen3-1.7B}\nfallback: {url: %q, model: Qwen3-0.6B}\nauth: {keysDir: %q}\nbreaker: {failureThreshold: 2}\n", down, fb.URL, dir)
		if err := tg.Load([]byte(cfg)); err != nil {
			t.Fatal(err)
		}
		var codes []string
		for range 2 {
			resp := tg.post(t, "/v1/embeddings", `{"model":"Qwen3-1.7B","input":"hi"}`, "Authorization", "Bearer sk-app")
			readAll(t, resp)
			codes = append(codes, fmt.Sprint(resp.StatusCode))
		}
		// Open: Responses go to the fallback; embeddings have none and get the 503.
		resp := tg.post(t, "/v1/responses", `{"model":"Qwen3-1.7B","input":"hi"}`, "Authorization", "Bearer sk-app")
		readAll(t, resp)
		codes = append(codes, fmt.Sprint(resp.StatusCode, resp.Header.Get("X-Qwen-Upstream")))
		resp = tg.post(t, "/v1/embeddings", `{"model":"Qwen3-1.7B","input":"hi"}`, "Authorization", "Bearer sk-app")
		readAll(t, resp)
		codes = append(codes, fmt.Sprint(resp.StatusCode, resp.Header.Get("X-Qwen-Upstream")))
		if got := strings.Join(codes, " "); got != "502 502 200fallback 503static" {
			t.Errorf("codes %s", got)
		}
	})
	t.Run("unknown paths", func(t *testing.T) {
		for _, path := range []string{"/v1/responses/resp_1", "/v1/audio/speech", "/v1/embeddings/x"} {
			resp := tg.post(t, path, `{}`, "Authorization", "Bearer sk-app")
			_, typ, _, code := openAIError(t, readAll(t, resp))
			if resp.StatusCode != 404 || typ != "invalid_request_error" || code != "unknown_url" {
				t.Errorf("%s: %d %s %v", path, resp.StatusCode, typ, code)
			}
		}
	})
}

// FuzzPassthrough feeds arbitrary bodies to the Responses and embeddings parsing and their
// upstream rewrite, and arbitrary streams to the Responses stream pass-through: what parses
// goes upstream as a JSON object with the upstream's model and otherwise as sent; a Responses
// stream reaches the client byte for byte.
func FuzzPassthrough(f *testing.F) {
	f.Add([]byte(`{"model":"Qwen3-1.7B","input":"hi","max_output_tokens":5,"stream":true}`), true,
		[]byte("event: response.created\ndata: {\"type\":\"response.created\"}\n\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"a\"}\n\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"))
	f.Add([]byte(`{"model":"m","input":["a","b"],"dimensions":8}`), false, []byte("data: {\"type\":\"response.failed\",\"response\":null}\n\n"))
	f.Add([]byte(`{"model":"m","input":null}`), true, []byte(`data: {"type":"response.completed","response":{"usage":{"output_tokens":"x"}}}`))
	f.Fuzz(func(t *testing.T, body []byte, responses bool, stream []byte) {
		ep := embeddingsEndpoint
		if responses {
			ep = responsesEndpoint
		}
		if req, aerr := parseRequest(ep, "application/json", body); aerr == nil {
			if req.promptTokens < 1 || req.maxTokens < 0 || req.embeds != !responses {
				t.Fatalf("estimate %+v", req)
			}
			out, err := req.upstreamBody(rewrite{model: "upstream-model", stream: req.stream})
			if err != nil {
				t.Fatalf("rewrite failed on a parsed request: %v", err)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(out, &got); err != nil || string(got["model"]) != `"upstream-model"` {
				t.Fatalf("rewritten body %s: %v", out, err)
			}
			if len(got) != len(req.fields) {
				t.Fatalf("fields added or dropped: %s", out)
			}
		} else if aerr.status != 400 || aerr.message == "" {
			t.Fatalf("bad error %+v", aerr)
		}
		w := httptest.NewRecorder()
		s, err := pipeSSE(w, bytes.NewReader(stream), false, true, nil)
		if err != nil || !bytes.Equal(w.Body.Bytes(), stream) {
			t.Fatalf("err %v; output differs from input", err)
		}
		if s.usage != nil && !s.done {
			t.Fatalf("usage without the Response's end: %+v", s)
		}
	})
}
