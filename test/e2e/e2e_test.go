// Package e2e drives the local demo stack (internal/testutil/stack, what `make demo` runs) like a
// user: an OpenAI SDK client and curl against the gateway, kubectl edits of the policy and
// the plan, the simulated GPU's temperature, failure injection in the engine simulator, and
// a crash of the operator. It needs the tools `make setup` installs and fails, naming the
// install command, when one is missing.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/testutil/stack"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// TestDemo starts the demo in a temporary directory, runs the user stories in order (they
// share the stack; each leaves it as the next expects) and stops it.
func TestDemo(t *testing.T) {
	for _, name := range []string{"kube-apiserver", "etcd", "kubectl", "llm-d-inference-sim", "redis-server", "prometheus", "curl"} {
		tools.Path(t, name)
	}
	root, err := tools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bin := t.TempDir()
	begin := time.Now()
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := stack.Build(bctx, root, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built manager, gateway and qwen-demo in %s", time.Since(begin).Round(time.Millisecond))

	dir := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() {
			if s, err := stack.Attach(dir); err == nil {
				t.Logf("component logs:\n%s", s.LogTails())
			}
		}
		if err := stack.Down(dir); err != nil {
			t.Errorf("stopping the demo: %v", err)
		}
	})
	// go test's -timeout panics without running cleanups: stop the processes before that.
	if dl, ok := t.Deadline(); ok && time.Until(dl) > time.Minute {
		timer := time.AfterFunc(time.Until(dl)-30*time.Second, func() { _ = stack.Down(dir) })
		t.Cleanup(func() { timer.Stop() })
	}
	uctx, ucancel := context.WithTimeout(ctx, 4*time.Minute)
	defer ucancel()
	st, err := stack.Up(uctx, stack.Options{Dir: dir, Bin: bin, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	kube, err := st.Client()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, kube: kube, http: &http.Client{Timeout: 30 * time.Second},
		sdk: openai.NewClient(option.WithBaseURL(st.GatewayURL()+"/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))}

	for _, tc := range []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"policy per user", testPolicyPerUser},
		{"chat", testChat},
		{"curl stream", testCurlStream},
		{"rate limit edit and 429", testRateLimit},
		{"degradation levels by override", testLevelsByOverride},
		{"degradation levels by GPU temperature", testLevelsByTelemetry},
		{"circuit breaker to fallback", testBreaker},
		{"manager restart", testManagerRestart},
		{"down stops everything", testDown},
	} {
		if !t.Run(tc.name, func(t *testing.T) { tc.run(t, e) }) {
			t.FailNow() // the stories build on each other
		}
	}
}

// testPolicyPerUser edits the policy so that each X-User-Id has its own budget (the demo
// limits by client IP, and every test request comes from 127.0.0.1), with room for the
// tests' traffic and without time-of-day schedules.
func testPolicyPerUser(t *testing.T, e *env) {
	e.kubectl(t, "patch", "rlp", policy, "--type", "merge", "-p",
		`{"spec":{"key":{"source":"Header","header":"X-User-Id"},"limits":{"requestsPerMinute":600,"burst":600},"schedules":null}}`)
	eventually(t, 20*time.Second, "the gateway config keyed by X-User-Id at 600/min", func() string {
		p := e.getPolicy(t)
		if p.Status.ObservedGeneration != p.Generation || p.Status.Effective == nil || ptr.Deref(p.Status.Effective.Limits.RequestsPerMinute, 0) != 600 {
			return fmt.Sprintf("policy status %+v", p.Status)
		}
		if c := e.gatewayConfig(t); !strings.Contains(c, "X-User-Id") || !strings.Contains(c, "requestsPerMinute: 600") {
			return "gateway config:\n" + c
		}
		return ""
	})
}

// testChat: openai-go chat with and without streaming, thinking on and off; the engine gets
// enable_thinking as chat_template_kwargs.
func testChat(t *testing.T, e *env) {
	for _, thinking := range []bool{true, false} {
		t.Run(fmt.Sprintf("non-streaming thinking=%v", thinking), func(t *testing.T) {
			id := e.id("chat")
			c, h := e.complete(t, id, thinking)
			if c.Model != model || c.Choices[0].Message.Content == "" || c.Usage.CompletionTokens == 0 || c.Usage.PromptTokens == 0 {
				t.Fatalf("completion: %s", c.RawJSON())
			}
			if lvl, up := h.Get("X-Qwen-Degradation-Level"), h.Get("X-Qwen-Upstream"); lvl != "" || up != "primary" {
				t.Fatalf("level %q upstream %q", lvl, up)
			}
			r := e.engineRequest(t, id)
			b := decodeBody(t, r)
			if r.Service != "qwen3-engine" || b.Stream || thinkingOf(b) != fmt.Sprint(thinking) {
				t.Fatalf("engine got %s %s", r.Service, r.Body)
			}
		})
		t.Run(fmt.Sprintf("streaming thinking=%v", thinking), func(t *testing.T) {
			id := e.id("chat")
			r := e.stream(t, id, thinking)
			if r.model != model || r.text == "" || r.contentChunks < 5 || r.usage.CompletionTokens != 12 {
				t.Fatalf("stream: model %s, %d content chunks, text %q, usage %+v", r.model, r.contentChunks, r.text, r.usage)
			}
			if lvl := r.header.Get("X-Qwen-Degradation-Level"); lvl != "" {
				t.Fatalf("level %q", lvl)
			}
			rec := e.engineRequest(t, id)
			if b := decodeBody(t, rec); !b.Stream || thinkingOf(b) != fmt.Sprint(thinking) {
				t.Fatalf("engine got %s", rec.Body)
			}
		})
	}
	t.Run("models", func(t *testing.T) {
		page, err := e.sdk.Models.List(context.Background())
		if err != nil || len(page.Data) != 1 || page.Data[0].ID != model {
			t.Fatalf("models: %+v %v", page, err)
		}
	})
}

// testCurlStream runs the demo's first pasted command: a streaming chat with curl.
func testCurlStream(t *testing.T, e *env) {
	body := fmt.Sprintf(`{"model":%q,"stream":true,"enable_thinking":false,"max_tokens":12,"messages":[{"role":"user","content":"用一句话介绍你自己"}]}`, model)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", "-sSN", "--fail-with-body", e.st.GatewayURL()+"/chat/completions",
		"-H", "Content-Type: application/json", "-H", "X-User-Id: "+e.id("curl"), "-d", body).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	s := string(out)
	if n := strings.Count(s, "data: {"); n < 3 || !strings.HasSuffix(strings.TrimSpace(s), "data: [DONE]") {
		t.Fatalf("curl got %d events:\n%s", n, s)
	}
}

// testRateLimit edits the policy to 5 requests per minute with kubectl and measures until a
// client is limited: the 6th request gets 429 with Retry-After, RateLimit-Policy, RateLimit,
// X-RateLimit-* and the OpenAI error body; the SDK sees a 429 error; other users are not
// affected.
func testRateLimit(t *testing.T, e *env) {
	e.kubectl(t, "patch", "rlp", policy, "--type", "merge", "-p", `{"spec":{"limits":{"requestsPerMinute":5,"burst":5}}}`)
	edited := time.Now()
	user, resp, body := e.waitLimited(t, 5, 20*time.Second)
	t.Logf("new limit in force %s after kubectl patch", time.Since(edited).Round(time.Millisecond))

	h := resp.Header
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 || ra > 120 {
		t.Errorf("Retry-After %q", h.Get("Retry-After"))
	}
	if p := h.Get("RateLimit-Policy"); !strings.Contains(p, `"qwen3-limits";q=5;w=60`) {
		t.Errorf("RateLimit-Policy %q", p)
	}
	if rl := h.Get("RateLimit"); !strings.HasPrefix(rl, `"qwen3-limits";r=0;t=`) {
		t.Errorf("RateLimit %q", rl)
	}
	if h.Get("X-RateLimit-Limit") != "5" || h.Get("X-RateLimit-Remaining") != "0" || h.Get("X-RateLimit-Reset") == "" {
		t.Errorf("X-RateLimit-*: %q %q %q", h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Reset"))
	}
	var errBody struct {
		Error struct {
			Type, Code, Message string
		}
	}
	if err := json.Unmarshal(body, &errBody); err != nil || errBody.Error.Type != "rate_limit_error" || errBody.Error.Code != "rate_limit_exceeded" {
		t.Errorf("429 body %s", body)
	}

	_, err := e.sdk.Chat.Completions.New(context.Background(), chatParams("again"), option.WithHeader("X-User-Id", user))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != "rate_limit_exceeded" {
		t.Errorf("SDK error = %v", err)
	}
	if resp, body := e.post(t, map[string]string{"X-User-Id": e.id("other")}); resp.StatusCode != http.StatusOK {
		t.Errorf("another user limited too: %s %s", resp.Status, body)
	}
	p := e.getPolicy(t)
	if p.Status.Effective == nil || ptr.Deref(p.Status.Effective.Limits.RequestsPerMinute, 0) != 5 {
		t.Errorf("status.effective = %+v, want limits.requestsPerMinute 5", p.Status.Effective)
	}
	if out := e.kubectl(t, "get", "rlp", policy, "--no-headers"); !strings.Contains(strings.Join(strings.Fields(out), " "), "qwen3 5 ") {
		t.Errorf("kubectl get rlp: %s", out)
	}
}

// testLevelsByOverride pins each level with spec.override and checks what a client gets and
// what the engines received.
func testLevelsByOverride(t *testing.T, e *env) {
	pin := func(t *testing.T, level int32) {
		t.Helper()
		e.kubectl(t, "patch", "dp", plan, "--type", "merge", "-p", fmt.Sprintf(`{"spec":{"override":{"level":%d,"reason":"e2e drill"}}}`, level))
		e.waitLevel(t, level, 20*time.Second)
	}
	t.Run("L1 DisableStreaming", func(t *testing.T) {
		pin(t, 1)
		id := e.id("l1")
		r := e.stream(t, id, true)
		if r.header.Get("X-Qwen-Degradation-Level") != "1" || r.contentChunks != 1 || r.model != model || r.usage.CompletionTokens != 12 {
			t.Fatalf("L1 stream: level %q, %d content chunks, text %q, model %s, usage %+v",
				r.header.Get("X-Qwen-Degradation-Level"), r.contentChunks, r.text, r.model, r.usage)
		}
		rec := e.engineRequest(t, id)
		if b := decodeBody(t, rec); b.Stream || thinkingOf(b) != "true" || rec.Service != "qwen3-engine" {
			t.Fatalf("engine got %s %s", rec.Service, rec.Body)
		}
	})
	t.Run("L2 DisableThinking", func(t *testing.T) {
		pin(t, 2)
		id := e.id("l2")
		r := e.stream(t, id, true)
		if r.header.Get("X-Qwen-Degradation-Level") != "2" || r.contentChunks != 1 || r.model != model {
			t.Fatalf("L2 stream: level %q, %d content chunks, model %s", r.header.Get("X-Qwen-Degradation-Level"), r.contentChunks, r.model)
		}
		rec := e.engineRequest(t, id)
		if b := decodeBody(t, rec); b.Stream || thinkingOf(b) != "false" {
			t.Fatalf("engine got %s", rec.Body)
		}
	})
	t.Run("L3 FallbackModel", func(t *testing.T) {
		pin(t, 3)
		id := e.id("l3")
		c, h := e.complete(t, id, true)
		if h.Get("X-Qwen-Degradation-Level") != "3" || c.Model != fallback || h.Get("X-Qwen-Upstream") != "fallback" {
			t.Fatalf("L3: level %q upstream %q: %s", h.Get("X-Qwen-Degradation-Level"), h.Get("X-Qwen-Upstream"), c.RawJSON())
		}
		rec := e.engineRequest(t, id)
		if b := decodeBody(t, rec); rec.Service != "qwen3-fallback" || b.Model != fallback || thinkingOf(b) != "false" {
			t.Fatalf("fallback got %s %s", rec.Service, rec.Body)
		}
		// The controller writes the service's status just after the gateway's ConfigMap, so
		// the gateway may serve L3 a moment before the status says so.
		eventually(t, 30*time.Second, "QwenService status at L3", func() string {
			qs := &v1alpha1.QwenService{}
			if err := e.kube.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: "qwen3"}, qs); err != nil {
				return err.Error()
			}
			if c := meta.FindStatusCondition(qs.Status.Conditions, v1alpha1.ConditionDegraded); qs.Status.DegradationLevel != 3 || c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Sprintf("level %d, Degraded %+v", qs.Status.DegradationLevel, c)
			}
			return ""
		})
	})
	t.Run("L4 StaticResponse", func(t *testing.T) {
		pin(t, 4)
		id := e.id("l4")
		c, h := e.complete(t, id, true)
		if h.Get("X-Qwen-Degradation-Level") != "4" || h.Get("X-Qwen-Upstream") != "static" || c.Choices[0].Message.Content != static {
			t.Fatalf("L4: level %q upstream %q: %s", h.Get("X-Qwen-Degradation-Level"), h.Get("X-Qwen-Upstream"), c.RawJSON())
		}
		r := e.stream(t, e.id("l4"), false)
		if r.text != static || r.header.Get("X-Qwen-Degradation-Level") != "4" {
			t.Fatalf("L4 stream: %q level %q", r.text, r.header.Get("X-Qwen-Degradation-Level"))
		}
		if e.findRequest(t, id) != nil {
			t.Fatal("an engine was called at L4")
		}
	})
	t.Run("L0", func(t *testing.T) {
		pin(t, 0)
		if c, h := e.complete(t, e.id("l0"), true); c.Model != model || h.Get("X-Qwen-Degradation-Level") != "" {
			t.Fatalf("L0: level %q: %s", h.Get("X-Qwen-Degradation-Level"), c.RawJSON())
		}
		p := e.getPlan(t)
		var levels []int32
		for _, h := range p.Status.History {
			levels = append(levels, h.Level)
		}
		if !slices.Equal(levels[max(0, len(levels)-5):], []int32{1, 2, 3, 4, 0}) || !strings.Contains(p.Status.Reasons[0], "e2e drill") {
			t.Fatalf("history %v, reasons %v", levels, p.Status.Reasons)
		}
	})
}

// testLevelsByTelemetry removes the override and drives the ladder with the simulated GPU's
// temperature, through hack/demo/gpu-temp as the demo's user does: 85 °C trips L1 at once and
// L2 after its `for: 5s`, 92 °C is L4, 60 °C returns to L0 after the cooldown.
func testLevelsByTelemetry(t *testing.T, e *env) {
	e.kubectl(t, "patch", "dp", plan, "--type", "json", "-p",
		`[{"op":"remove","path":"/spec/override"},{"op":"replace","path":"/spec/cooldown","value":"2s"}]`)
	gpuTemp := func(t *testing.T, celsius string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(e.st.Root, "hack", "demo", "gpu-temp"), celsius)
		cmd.Env = append(os.Environ(), "QWEN_DEMO_DIR="+e.st.Dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gpu-temp %s: %v\n%s", celsius, err, out)
		}
	}
	defer gpuTemp(t, "60")

	gpuTemp(t, "85")
	e.waitLevel(t, 2, 40*time.Second)
	p := e.getPlan(t)
	if len(p.Status.Reasons) == 0 || !strings.Contains(p.Status.Reasons[0], "GPUTemperature=85") || !strings.Contains(p.Status.Reasons[0], "(L2)") {
		t.Fatalf("reasons %v", p.Status.Reasons)
	}
	if r := e.stream(t, e.id("hot"), true); r.contentChunks != 1 || r.header.Get("X-Qwen-Degradation-Level") != "2" {
		t.Fatalf("at 85 °C: %d chunks, level %q", r.contentChunks, r.header.Get("X-Qwen-Degradation-Level"))
	}

	gpuTemp(t, "92")
	e.waitLevel(t, 4, 30*time.Second)
	if c, _ := e.complete(t, e.id("hotter"), false); c.Choices[0].Message.Content != static {
		t.Fatalf("at 92 °C: %s", c.RawJSON())
	}

	gpuTemp(t, "60")
	e.waitLevel(t, 0, 30*time.Second)
	p = e.getPlan(t)
	var levels []int32
	for _, h := range p.Status.History {
		levels = append(levels, h.Level)
	}
	if !slices.Equal(levels[max(0, len(levels)-4):], []int32{1, 2, 4, 0}) {
		t.Fatalf("history %v (want ... 1 2 4 0)", levels)
	}
	if c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionTelemetryAvailable); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("TelemetryAvailable %+v", c)
	}
}

// testBreaker makes the engine simulator fail every request: after the plan's 5 failures the
// breaker opens and clients get the fallback model; once the engine recovers, the half-open
// probe after recoveryTimeout (edited to 2s) closes it again.
func testBreaker(t *testing.T, e *env) {
	e.kubectl(t, "patch", "dp", plan, "--type", "merge", "-p",
		`{"spec":{"override":{"level":0,"reason":"e2e: telemetry off for the breaker"},"circuitBreaker":{"recoveryTimeout":"2s"}}}`)
	eventually(t, 20*time.Second, "the gateway config with recoveryTimeout 2s", func() string {
		if c := e.gatewayConfig(t); !strings.Contains(c, "recoveryTimeout: 2s") {
			return c
		}
		return ""
	})
	e.waitLevel(t, 0, 20*time.Second)

	e.setFailures(t, 100)
	defer e.setFailures(t, 0)
	// The first 5 requests fail on the primary; then the breaker is open and requests go to
	// the fallback. (The gateway records each outcome before its response ends.)
	var answers []string
	for len(answers) < 7 {
		resp, body := e.post(t, map[string]string{"X-User-Id": e.id("breaker")})
		up := resp.Header.Get("X-Qwen-Upstream")
		answers = append(answers, fmt.Sprintf("%d %s", resp.StatusCode, up))
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || up != "primary" {
			t.Fatalf("request %d: %s %s (so far %v)", len(answers), resp.Status, body, answers)
		}
	}
	if n := len(answers) - 1; n != 5 || answers[n] != "200 fallback" {
		t.Fatalf("answers %v, want 5 failures from the primary, then the fallback", answers)
	}
	c, h := e.complete(t, e.id("breaker"), true)
	if c.Model != fallback || h.Get("X-Qwen-Upstream") != "fallback" || h.Get("X-Qwen-Degradation-Level") != "" {
		t.Fatalf("breaker open: upstream %q level %q: %s", h.Get("X-Qwen-Upstream"), h.Get("X-Qwen-Degradation-Level"), c.RawJSON())
	}
	if v := gatewayMetric(t, e, `qwen_gateway_upstream_circuit_state{upstream="primary"}`); v != "2" {
		t.Fatalf("primary circuit state %q, want 2 (open)", v)
	}

	e.setFailures(t, 0)
	eventually(t, 20*time.Second, "the primary back after recoveryTimeout", func() string {
		c, h := e.complete(t, e.id("breaker"), true)
		if c.Model != model || h.Get("X-Qwen-Upstream") != "primary" {
			return fmt.Sprintf("upstream %q model %s", h.Get("X-Qwen-Upstream"), c.Model)
		}
		return ""
	})
}

func gatewayMetric(t *testing.T, e *env, series string) string {
	t.Helper()
	resp, err := e.http.Get(stack.URL(e.st.Ports.GatewayAdmin) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// testManagerRestart kills the operator with SIGKILL while clients keep calling the gateway
// and the policy is edited, starts it again, and checks that nothing was duplicated or lost:
// the same children with the same UIDs, the edit applied, the pinned level held, every
// client request answered.
func testManagerRestart(t *testing.T, e *env) {
	ctx := context.Background()
	e.kubectl(t, "patch", "dp", plan, "--type", "merge", "-p", `{"spec":{"override":{"level":2,"reason":"e2e: held across the restart"}}}`)
	e.waitLevel(t, 2, 20*time.Second)
	before := children(t, e)
	historyBefore := e.getPlan(t).Status.History

	// Clients keep calling throughout.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var answers, bad []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, body, err := e.tryPost(map[string]string{"X-User-Id": e.id("during-restart")})
			mu.Lock()
			switch {
			case err != nil:
				answers = append(answers, err.Error())
				bad = append(bad, err.Error())
			default:
				a := resp.Status + " level " + resp.Header.Get("X-Qwen-Degradation-Level")
				answers = append(answers, a)
				if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Qwen-Degradation-Level") != "2" {
					bad = append(bad, a+": "+string(body))
				}
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond) // pacing the client, not waiting for state
		}
	}()

	oldPid, err := e.st.Pid(stack.Manager)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.Kill(stack.Manager); err != nil {
		t.Fatal(err)
	}
	// Edited while no operator runs: the new one must pick it up.
	e.kubectl(t, "patch", "rlp", policy, "--type", "merge", "-p", `{"spec":{"limits":{"requestsPerMinute":7,"burst":7}}}`)
	mu.Lock()
	atKill := len(answers)
	mu.Unlock()
	eventually(t, 20*time.Second, "the gateway to keep answering while the operator is down", func() string {
		mu.Lock()
		defer mu.Unlock()
		if n := len(answers) - atKill; n < 5 {
			return fmt.Sprintf("%d answers since the kill", n)
		}
		return ""
	})
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := e.st.Start(sctx, stack.Manager); err != nil {
		t.Fatal(err)
	}
	if newPid, _ := e.st.Pid(stack.Manager); newPid == oldPid {
		t.Fatalf("manager pid unchanged (%d)", newPid)
	}
	if err := e.st.WaitConverged(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the policy edited during the outage in force", func() string {
		p := e.getPolicy(t)
		if p.Status.ObservedGeneration != p.Generation || p.Status.Effective == nil || ptr.Deref(p.Status.Effective.Limits.RequestsPerMinute, 0) != 7 {
			return fmt.Sprintf("policy status %+v", p.Status)
		}
		if c := e.gatewayConfig(t); !strings.Contains(c, "requestsPerMinute: 7") {
			return "gateway config:\n" + c
		}
		return ""
	})
	e.waitLimited(t, 7, 20*time.Second)
	close(stop)
	wg.Wait()

	after := children(t, e)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("children changed across the restart:\nbefore %v\nafter  %v", before, after)
	}
	p := e.getPlan(t)
	if p.Status.Level != 2 || len(p.Status.History) != len(historyBefore) {
		t.Errorf("plan after the restart: level %d, history %v (before %v)", p.Status.Level, p.Status.History, historyBefore)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 || len(answers) < 5 {
		t.Errorf("%d requests during the restart, %d not served at level 2: %v", len(answers), len(bad), bad)
	}
	t.Logf("%d client requests answered during the restart", len(answers))
}

// children lists every object of the kinds the operator renders in the demo namespace, as
// "Kind/name=UID (owner)": a duplicate, a re-created object or a lost owner shows as a change.
func children(t *testing.T, e *env) []string {
	t.Helper()
	var out []string
	for _, l := range []client.ObjectList{&appsv1.DeploymentList{}, &corev1.ServiceList{}, &corev1.ConfigMapList{},
		&corev1.ServiceAccountList{}, &rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &policyv1.PodDisruptionBudgetList{}} {
		if err := e.kube.List(context.Background(), l, client.InNamespace(namespace)); err != nil {
			t.Fatal(err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			o := it.(client.Object)
			gvk, _ := e.kube.GroupVersionKindFor(o)
			owner := "none"
			if ref := metav1.GetControllerOf(o); ref != nil {
				owner = ref.Kind + "/" + ref.Name
			}
			out = append(out, fmt.Sprintf("%s/%s=%s (%s)", gvk.Kind, o.GetName(), o.GetUID(), owner))
		}
	}
	slices.Sort(out)
	if len(out) < 10 {
		t.Fatalf("expected the rendered children, got %v", out)
	}
	return out
}

// testDown stops the demo as `make demo-down` does and checks that every process it started
// (the control plane's kube-apiserver and etcd included) is gone.
func testDown(t *testing.T, e *env) {
	pids := map[string][]string{} // name → [pid, start time]
	files, _ := filepath.Glob(e.st.Path("pids", "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pids[strings.TrimSuffix(filepath.Base(f), ".pid")] = strings.Fields(string(b))
	}
	for _, want := range append(slices.Clone(stack.Components), "kube-apiserver", "etcd") {
		if len(pids[want]) != 2 {
			t.Fatalf("no pid recorded for %s (have %v)", want, pids)
		}
	}
	if err := stack.Down(e.st.Dir); err != nil {
		t.Fatal(err)
	}
	for name, p := range pids {
		eventually(t, 10*time.Second, fmt.Sprintf("%s (pid %s) gone", name, p[0]), func() string {
			stat, err := os.ReadFile("/proc/" + p[0] + "/stat")
			if err != nil {
				return "" // gone
			}
			f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if f[0] == "Z" || f[19] != p[1] {
				return "" // exited (not reaped yet), or the pid now belongs to another process
			}
			return "still running: " + string(stat)
		})
	}
	if left, _ := filepath.Glob(e.st.Path("pids", "*.pid")); len(left) > 0 {
		t.Fatalf("pid files left: %v", left)
	}
}
