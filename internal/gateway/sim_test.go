package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
)

// tap is a reverse proxy in front of a real simulator that records what the gateway sent it,
// and the JSON answers (not the streams) the simulator gave.
type tap struct {
	srv       *httptest.Server
	mu        sync.Mutex
	bodies    []map[string]any
	responses [][]byte
}

func newTap(t testing.TB, sim *simulator.Sim) *tap {
	u, _ := url.Parse(sim.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	tp := &tap{}
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		tp.mu.Lock()
		tp.responses = append(tp.responses, b)
		tp.mu.Unlock()
		return err
	}
	tp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		tp.mu.Lock()
		tp.bodies = append(tp.bodies, m)
		tp.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(tp.srv.Close)
	return tp
}

func (tp *tap) count() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return len(tp.bodies)
}

func (tp *tap) last() map[string]any {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.bodies[len(tp.bodies)-1]
}

// lastResponse is the last JSON answer the simulator gave.
func (tp *tap) lastResponse() []byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.responses[len(tp.responses)-1]
}

func sdkClient(base string, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{option.WithBaseURL(base + "/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0)}, opts...)...)
}

func chatParams(model, msg string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:     model,
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage(msg)},
		MaxTokens: openai.Int(20),
	}
}

func TestSDKThroughGatewayToSimulator(t *testing.T) {
	sim := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B", Mode: "echo"})
	dir := t.TempDir()
	writeKey(t, dir, "app", "sk-app")
	tg := startGateway(t, nil, fmt.Sprintf("upstream: {url: %q, model: Qwen3-1.7B}\nauth: {keysDir: %q}\n", sim.URL, dir))
	client := sdkClient(tg.srv.URL, option.WithAPIKey("sk-app"))
	ctx := context.Background()

	t.Run("non-streaming", func(t *testing.T) {
		c, err := client.Chat.Completions.New(ctx, chatParams("Qwen3-1.7B", "hello gateway"), option.WithJSONSet("enable_thinking", false))
		if err != nil {
			t.Fatal(err)
		}
		if c.Choices[0].Message.Content != "hello gateway" || c.Usage.PromptTokens == 0 || c.Usage.CompletionTokens == 0 {
			t.Fatalf("got %q usage %+v", c.Choices[0].Message.Content, c.Usage)
		}
	})
	t.Run("streaming with usage", func(t *testing.T) {
		p := chatParams("Qwen3-1.7B", "stream me please")
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		s := client.Chat.Completions.NewStreaming(ctx, p)
		var acc openai.ChatCompletionAccumulator
		chunks := 0
		for s.Next() {
			acc.AddChunk(s.Current())
			chunks++
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if acc.Choices[0].Message.Content != "stream me please" || acc.Usage.TotalTokens == 0 || chunks < 3 {
			t.Fatalf("content %q usage %+v chunks %d", acc.Choices[0].Message.Content, acc.Usage, chunks)
		}
	})
	t.Run("streaming without usage gets no usage chunk", func(t *testing.T) {
		s := client.Chat.Completions.NewStreaming(ctx, chatParams("Qwen3-1.7B", "no usage"))
		var text strings.Builder
		for s.Next() {
			ch := s.Current()
			if len(ch.Choices) == 0 || ch.JSON.Usage.Valid() && ch.Usage.TotalTokens > 0 {
				t.Fatalf("usage chunk leaked: %s", ch.RawJSON())
			}
			text.WriteString(ch.Choices[0].Delta.Content)
		}
		if err := s.Err(); err != nil || text.String() != "no usage" {
			t.Fatalf("%q %v", text.String(), err)
		}
		if got := metricValue(t, tg.Gateway, "qwen_gateway_tokens_total", "direction", "output"); got == 0 {
			t.Fatal("usage of the stripped chunk not counted")
		}
	})
	t.Run("completions streaming", func(t *testing.T) {
		s := client.Completions.NewStreaming(ctx, openai.CompletionNewParams{
			Model: "Qwen3-1.7B", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("once upon a time")}, MaxTokens: openai.Int(10)})
		var text strings.Builder
		for s.Next() {
			if len(s.Current().Choices) > 0 {
				text.WriteString(s.Current().Choices[0].Text)
			}
		}
		if err := s.Err(); err != nil || text.Len() == 0 {
			t.Fatalf("%q %v", text.String(), err)
		}
	})
	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx)
		if err != nil || len(page.Data) != 1 || page.Data[0].ID != "Qwen3-1.7B" {
			t.Fatalf("%+v %v", page, err)
		}
	})
	t.Run("bad key", func(t *testing.T) {
		bad := sdkClient(tg.srv.URL, option.WithAPIKey("sk-wrong"))
		_, err := bad.Chat.Completions.New(ctx, chatParams("Qwen3-1.7B", "x"))
		var apiErr *openai.Error
		if !errorsAs(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestDegradationLevelsObservedByClient runs each level against two real simulators (primary
// and fallback) behind taps, and checks what an SDK client sees and what the engines got.
func TestDegradationLevelsObservedByClient(t *testing.T) {
	primary := newTap(t, simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B", Mode: "echo"}))
	fallback := newTap(t, simulator.Start(t, simulator.Options{Model: "Qwen3-0.6B", Mode: "echo"}))
	config := func(level int, withFallback bool) string {
		c := fmt.Sprintf("upstream: {url: %q, model: Qwen3-1.7B}\ndegradation: {level: %d, staticResponse: {message: 服务繁忙，请稍后再试}}\n", primary.srv.URL, level)
		if withFallback {
			c += fmt.Sprintf("fallback: {url: %q, model: Qwen3-0.6B}\n", fallback.srv.URL)
		}
		return c
	}
	tg := startGateway(t, nil, config(0, true))
	ctx := context.Background()
	client := sdkClient(tg.srv.URL)

	// stream runs a streaming SDK request and returns the text, chunk count, model and header.
	stream := func(t *testing.T) (text string, chunks int, model string, level string) {
		t.Helper()
		var resp *http.Response
		p := chatParams("Qwen3-1.7B", "the quick brown fox")
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		s := client.Chat.Completions.NewStreaming(ctx, p, option.WithJSONSet("enable_thinking", true), option.WithResponseInto(&resp))
		var acc openai.ChatCompletionAccumulator
		for s.Next() {
			acc.AddChunk(s.Current())
			if len(s.Current().Choices) > 0 {
				chunks++
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		return acc.Choices[0].Message.Content, chunks, acc.Model, resp.Header.Get("X-Qwen-Degradation-Level")
	}
	thinking := func(body map[string]any) any {
		kw, _ := body["chat_template_kwargs"].(map[string]any)
		return kw["enable_thinking"]
	}

	t.Run("L0", func(t *testing.T) {
		text, chunks, model, lvl := stream(t)
		if text != "the quick brown fox" || chunks < 3 || model != "Qwen3-1.7B" || lvl != "" {
			t.Fatalf("text %q chunks %d model %s level %q", text, chunks, model, lvl)
		}
		if b := primary.last(); b["stream"] != true || thinking(b) != true {
			t.Fatalf("engine got %v", b)
		}
	})
	t.Run("L1 DisableStreaming", func(t *testing.T) {
		tg.Load([]byte(config(1, true)))
		text, chunks, model, lvl := stream(t)
		if text != "the quick brown fox" || chunks != 1 || model != "Qwen3-1.7B" || lvl != "1" {
			t.Fatalf("text %q chunks %d model %s level %q", text, chunks, model, lvl)
		}
		if b := primary.last(); b["stream"] != false || b["stream_options"] != nil || thinking(b) != true {
			t.Fatalf("engine got %v", b)
		}
	})
	t.Run("L2 DisableThinking", func(t *testing.T) {
		tg.Load([]byte(config(2, true)))
		text, chunks, _, lvl := stream(t)
		if text != "the quick brown fox" || chunks != 1 || lvl != "2" {
			t.Fatalf("text %q chunks %d level %q", text, chunks, lvl)
		}
		if b := primary.last(); b["stream"] != false || thinking(b) != false {
			t.Fatalf("engine got %v", b)
		}
	})
	t.Run("L3 FallbackModel", func(t *testing.T) {
		tg.Load([]byte(config(3, true)))
		before := primary.count()
		text, chunks, model, lvl := stream(t)
		if text != "the quick brown fox" || chunks != 1 || model != "Qwen3-0.6B" || lvl != "3" {
			t.Fatalf("text %q chunks %d model %s level %q", text, chunks, model, lvl)
		}
		if b := fallback.last(); b["model"] != "Qwen3-0.6B" || b["stream"] != false || thinking(b) != false {
			t.Fatalf("fallback got %v", b)
		}
		if primary.count() != before {
			t.Fatal("primary called at L3")
		}
	})
	t.Run("L3 without fallback acts as L2", func(t *testing.T) {
		tg.Load([]byte(config(3, false)))
		_, _, model, lvl := stream(t)
		if model != "Qwen3-1.7B" || lvl != "3" || thinking(primary.last()) != false {
			t.Fatalf("model %s level %q engine %v", model, lvl, primary.last())
		}
	})
	t.Run("L4 StaticResponse", func(t *testing.T) {
		tg.Load([]byte(config(4, true)))
		p, f := primary.count(), fallback.count()
		text, chunks, _, lvl := stream(t)
		if text != "服务繁忙，请稍后再试" || chunks != 1 || lvl != "4" {
			t.Fatalf("text %q chunks %d level %q", text, chunks, lvl)
		}
		var resp *http.Response
		c, err := client.Chat.Completions.New(ctx, chatParams("Qwen3-1.7B", "x"), option.WithResponseInto(&resp))
		if err != nil || c.Choices[0].Message.Content != "服务繁忙，请稍后再试" || resp.Header.Get("X-Qwen-Degradation-Level") != "4" {
			t.Fatalf("non-streaming static: %v %v", c, err)
		}
		if primary.count() != p || fallback.count() != f {
			t.Fatal("an engine was called at L4")
		}
	})
	if got := metricValue(t, tg.Gateway, "qwen_gateway_degradation_level"); got != 4 {
		t.Errorf("degradation_level = %v", got)
	}
}
