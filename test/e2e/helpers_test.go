package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/testutil/stack"
)

// env is the running demo as a user reaches it: the gateway URL, kubectl, an OpenAI SDK
// client, and a controller-runtime client to read status.
type env struct {
	st   *stack.Stack
	kube client.Client
	sdk  openai.Client
	seq  atomic.Int64
	http *http.Client
}

const (
	namespace = "ai"
	model     = "Qwen3-1.7B"
	fallback  = "Qwen3-0.6B"
	policy    = "qwen3-limits"
	plan      = "qwen3-degrade"
	static    = "服务繁忙，请稍后再试"
)

// id returns a fresh identifier for X-Request-Id and X-User-Id headers.
func (e *env) id(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), e.seq.Add(1))
}

// kubectl runs kubectl in the demo namespace and fails the test on error.
func (e *env) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := e.st.Kubectl(ctx, append([]string{"-n", namespace}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// chatOpts are the SDK options of one request: a fresh user (the policy limits per
// X-User-Id, so requests of different subtests never share a budget), a request id to find
// the request in the engines' request log, and the raw response.
func (e *env) chatOpts(reqID string, resp **http.Response, more ...option.RequestOption) []option.RequestOption {
	return append([]option.RequestOption{
		option.WithHeader("X-User-Id", e.id("user")),
		option.WithHeader("X-Request-Id", reqID),
		option.WithResponseInto(resp),
	}, more...)
}

func chatParams(msg string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:     model,
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage(msg)},
		MaxTokens: openai.Int(12),
	}
}

// streamResult is what a client saw of a streamed chat.
type streamResult struct {
	text          string
	contentChunks int // chunks carrying content
	model         string
	usage         openai.CompletionUsage
	header        http.Header
}

// stream runs a streaming chat with usage through the SDK.
func (e *env) stream(t *testing.T, reqID string, thinking bool) streamResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := chatParams("tell me about Qwen3")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	var resp *http.Response
	// ignore_eos (a vLLM extension the simulator honours) makes the answer max_tokens long, so
	// that a real stream has many chunks.
	s := e.sdk.Chat.Completions.NewStreaming(ctx, p, e.chatOpts(reqID, &resp,
		option.WithJSONSet("enable_thinking", thinking), option.WithJSONSet("ignore_eos", true))...)
	var acc openai.ChatCompletionAccumulator
	var r streamResult
	for s.Next() {
		ch := s.Current()
		acc.AddChunk(ch)
		if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			r.contentChunks++
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if len(acc.Choices) == 0 {
		t.Fatal("stream: no choices")
	}
	r.text, r.model, r.usage, r.header = acc.Choices[0].Message.Content, acc.Model, acc.Usage, resp.Header
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("stream: Content-Type %q", ct)
	}
	return r
}

// complete runs a non-streaming chat through the SDK.
func (e *env) complete(t *testing.T, reqID string, thinking bool) (*openai.ChatCompletion, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var resp *http.Response
	c, err := e.sdk.Chat.Completions.New(ctx, chatParams("hello"), e.chatOpts(reqID, &resp, option.WithJSONSet("enable_thinking", thinking))...)
	if err != nil {
		t.Fatalf("chat: %v", err)
	}
	if len(c.Choices) == 0 {
		t.Fatalf("chat: no choices: %s", c.RawJSON())
	}
	return c, resp.Header
}

// post sends a raw non-streaming chat request with headers, as curl would.
func (e *env) post(t *testing.T, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := e.tryPost(headers)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// tryPost is post for goroutines other than the test's.
func (e *env) tryPost(headers map[string]string) (*http.Response, []byte, error) {
	body := fmt.Sprintf(`{"model":%q,"max_tokens":4,"messages":[{"role":"user","content":"hi"}]}`, model)
	req, _ := http.NewRequest(http.MethodPost, e.st.GatewayURL()+"/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("POST /v1/chat/completions: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the response: %w", err)
	}
	return resp, b, nil
}

// waitLimited waits until a fresh client gets n answers and then a 429, which is how a
// client sees a limit of n per minute (burst n) in force; it returns the user and the 429.
func (e *env) waitLimited(t *testing.T, n int, timeout time.Duration) (string, *http.Response, []byte) {
	t.Helper()
	var user string
	var resp *http.Response
	var body []byte
	eventually(t, timeout, fmt.Sprintf("a client's request %d to get 429 (limit %d/min)", n+1, n), func() string {
		user = e.id("limited")
		for i := 1; i <= n+1; i++ {
			resp, body = e.post(t, map[string]string{"X-User-Id": user})
			if i <= n && resp.StatusCode != http.StatusOK {
				return fmt.Sprintf("request %d: %s %s", i, resp.Status, bytes.TrimSpace(body))
			}
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			return fmt.Sprintf("request %d: %s", n+1, resp.Status)
		}
		return ""
	})
	return user, resp, body
}

// engineRequest returns the request with X-Request-Id id as an engine received it (from the
// agent's request log), waiting briefly for it to be written.
func (e *env) engineRequest(t *testing.T, id string) stack.RequestRecord {
	t.Helper()
	var found *stack.RequestRecord
	eventually(t, 10*time.Second, "request "+id+" in "+stack.RequestLog, func() string {
		found = e.findRequest(t, id)
		if found == nil {
			return "not logged"
		}
		return ""
	})
	return *found
}

func (e *env) findRequest(t *testing.T, id string) *stack.RequestRecord {
	t.Helper()
	f, err := os.Open(e.st.Path("logs", stack.RequestLog))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r stack.RequestRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v: %s", stack.RequestLog, err, sc.Bytes())
		}
		if r.RequestID == id {
			return &r
		}
	}
	return nil
}

// upstreamBody decodes the fields of an engine request the tests look at.
type upstreamBody struct {
	Model              string `json:"model"`
	Stream             bool   `json:"stream"`
	ChatTemplateKwargs struct {
		EnableThinking *bool `json:"enable_thinking"`
	} `json:"chat_template_kwargs"`
}

func decodeBody(t *testing.T, r stack.RequestRecord) upstreamBody {
	t.Helper()
	var b upstreamBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("engine request body %s: %v", r.Body, err)
	}
	return b
}

func thinkingOf(b upstreamBody) string {
	if b.ChatTemplateKwargs.EnableThinking == nil {
		return "unset"
	}
	return fmt.Sprint(*b.ChatTemplateKwargs.EnableThinking)
}

// eventually polls check every 100ms until it returns "" or the deadline passes; the failure
// names what was seen last.
func eventually(t *testing.T, timeout time.Duration, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		last := check()
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, still waiting for %s: %s", timeout, what, last)
		}
		time.Sleep(100 * time.Millisecond) // polling state, not waiting out a duration
	}
}

// getPlan and getPolicy read status.
func (e *env) getPlan(t *testing.T) *v1alpha1.DegradationPlan {
	t.Helper()
	p := &v1alpha1.DegradationPlan{}
	if err := e.kube.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: plan}, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *env) getPolicy(t *testing.T) *v1alpha1.RateLimitPolicy {
	t.Helper()
	p := &v1alpha1.RateLimitPolicy{}
	if err := e.kube.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: policy}, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// gatewayConfig returns the rendered gateway config (the ConfigMap the gateway watches).
func (e *env) gatewayConfig(t *testing.T) string {
	t.Helper()
	return e.kubectl(t, "get", "configmap", "qwen3-gateway", "-o", "jsonpath={.data.config\\.yaml}")
}

// waitLevel waits until the plan's status and the responses a client gets are at level n.
func (e *env) waitLevel(t *testing.T, n int32, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("DegradationPlan at level %d", n), func() string {
		p := e.getPlan(t)
		if p.Status.ObservedGeneration != p.Generation || p.Status.Level != n {
			return fmt.Sprintf("level %d (generation %d observed %d), reasons %v, signals %v",
				p.Status.Level, p.Generation, p.Status.ObservedGeneration, p.Status.Reasons, p.Status.Signals)
		}
		return ""
	})
	want := ""
	if n > 0 {
		want = fmt.Sprint(n)
	}
	eventually(t, timeout, fmt.Sprintf("responses at level %d", n), func() string {
		resp, body := e.post(t, map[string]string{"X-User-Id": e.id("user")})
		if got := resp.Header.Get("X-Qwen-Degradation-Level"); resp.StatusCode != http.StatusOK || got != want {
			return fmt.Sprintf("%s, X-Qwen-Degradation-Level %q: %s", resp.Status, got, bytes.TrimSpace(body))
		}
		return ""
	})
}

// setFailures sets the engine simulator's failure injection (its POST /admin/config).
func (e *env) setFailures(t *testing.T, rate int) {
	t.Helper()
	body := fmt.Sprintf(`{"failure-injection-rate":%d,"failure-types":["server_error"]}`, rate)
	resp, err := e.http.Post(e.st.EngineURL()+"/admin/config", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("engine /admin/config: %s", resp.Status)
	}
}

// testWriter sends Up's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
