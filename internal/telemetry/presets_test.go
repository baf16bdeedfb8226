package telemetry

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

var target = Target{Namespace: "ai", Service: "qwen3", Engine: "qwen3-engine", Gateway: "qwen3-gateway"}

// Every signal of the API has a preset for every engine type, or is PromQL.
func TestEverySignalHasAPreset(t *testing.T) {
	for _, engine := range []v1alpha1.EngineType{"", v1alpha1.EngineVLLM, v1alpha1.EngineSGLang, v1alpha1.EngineSimulator} {
		target := target
		target.EngineType = engine
		checkPresets(t, target)
	}
	if len(presets) != 5 || len(enginePresets[v1alpha1.EngineVLLM]) != 3 || len(enginePresets[v1alpha1.EngineSGLang]) != 3 {
		t.Errorf("presets has %d entries, the engine presets %d and %d; add the new signal to checkPresets",
			len(presets), len(enginePresets[v1alpha1.EngineVLLM]), len(enginePresets[v1alpha1.EngineSGLang]))
	}
}

// TestEngineSignalsFollowTheEngineType checks the engine signals read sglang:* for SGLang and
// vllm:* for the rest (the Simulator serves vLLM's names).
func TestEngineSignalsFollowTheEngineType(t *testing.T) {
	for engine, prefix := range map[v1alpha1.EngineType]string{
		"": "vllm:", v1alpha1.EngineVLLM: "vllm:", v1alpha1.EngineSimulator: "vllm:", v1alpha1.EngineSGLang: "sglang:",
	} {
		target := target
		target.EngineType = engine
		for _, s := range []v1alpha1.Signal{v1alpha1.SignalKVCacheUsage, v1alpha1.SignalQueueDepth, v1alpha1.SignalP95TimeToFirstTokenSeconds} {
			q, err := Expr(v1alpha1.Trigger{Signal: s}, target)
			other := map[string]string{"vllm:": "sglang:", "sglang:": "vllm:"}[prefix]
			if err != nil || !strings.Contains(q, prefix) || strings.Contains(q, other) {
				t.Errorf("%s on %q: %s %v, want %s metrics only", s, engine, q, err, prefix)
			}
		}
	}
}

func checkPresets(t *testing.T, target Target) {
	t.Helper()
	for _, s := range []v1alpha1.Signal{
		v1alpha1.SignalGPUTemperature, v1alpha1.SignalGPUUtilization, v1alpha1.SignalGPUMemoryUsed,
		v1alpha1.SignalKVCacheUsage, v1alpha1.SignalQueueDepth, v1alpha1.SignalP95TimeToFirstTokenSeconds,
		v1alpha1.SignalP95LatencySeconds, v1alpha1.SignalErrorRate,
	} {
		q, err := Expr(v1alpha1.Trigger{Signal: s}, target)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if strings.Contains(q, "$") || !strings.Contains(q, `namespace="ai"`) {
			t.Errorf("%s: not scoped or not substituted: %s", s, q)
		}
		dcgm := strings.Contains(q, "DCGM_")
		if dcgm != strings.Contains(q, `exported_pod=~"qwen3-engine-`) {
			t.Errorf("%s: DCGM presets, and only they, must also match exported_pod: %s", s, q)
		}
		if got := strings.Count(q, "("); got != strings.Count(q, ")") {
			t.Errorf("%s: unbalanced parentheses: %s", s, q)
		}
	}
}

func TestExprGPUTemperature(t *testing.T) {
	q, _ := Expr(v1alpha1.Trigger{Signal: v1alpha1.SignalGPUTemperature}, target)
	want := `max((DCGM_FI_DEV_GPU_TEMP{namespace="ai",pod=~"qwen3-engine-[a-z0-9]+(-[a-z0-9]+)?"}) or ` +
		`(DCGM_FI_DEV_GPU_TEMP{exported_namespace="ai",exported_pod=~"qwen3-engine-[a-z0-9]+(-[a-z0-9]+)?"}))`
	if q != want {
		t.Errorf("got  %s\nwant %s", q, want)
	}
}

func TestPodRegex(t *testing.T) {
	// PromQL anchors regexes at both ends, as ^(?:…)$ does here.
	engine := regexp.MustCompile("^(?:" + podRegex("qwen3-engine") + ")$")
	for pod, want := range map[string]bool{
		"qwen3-engine-7d4b9c6f5-x2k9p":        true,
		"qwen3-engine-7d4b9c6f5x2k9p":         true,  // a long name shortened by Kubernetes
		"qwen3-engine-engine-7d4b9c6f5-x2k9p": false, // QwenService "qwen3-engine"
		"qwen-engine-7d4b9c6f5-x2k9p":         false,
		"qwen3-fallback-7d4b9c6f5-x2k9p":      false,
		"qwen3-gateway-7d4b9c6f5-x2k9p":       false,
		"xqwen3-engine-7d4b9c6f5-x2k9p":       false,
	} {
		if got := engine.MatchString(pod); got != want {
			t.Errorf("engine regex on %s = %v, want %v", pod, got, want)
		}
	}
	dotted := regexp.MustCompile("^(?:" + podRegex("qwen.3-engine") + ")$")
	if dotted.MatchString("qwenx3-engine-a-b") {
		t.Errorf("a dot in the service name must be literal")
	}
}

func TestSubstitute(t *testing.T) {
	got := Substitute(`sum(x{namespace="$namespace",pod=~"$pods",svc="$service"}) / sum(y{pod=~"$gatewayPods"})`,
		Target{Namespace: "prod", Service: "chat.v2", Engine: "chat.v2-engine", Gateway: "chat.v2-gateway"})
	want := `sum(x{namespace="prod",pod=~"chat\\.v2-engine-[a-z0-9]+(-[a-z0-9]+)?",svc="chat.v2"}) / sum(y{pod=~"chat\\.v2-gateway-[a-z0-9]+(-[a-z0-9]+)?"})`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestExprErrors(t *testing.T) {
	for _, tr := range []v1alpha1.Trigger{{Signal: "GPUPower"}, {Signal: v1alpha1.SignalPromQL}} {
		if _, err := Expr(tr, target); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%s: err = %v, want ErrBadQuery", tr.Signal, err)
		}
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "prometheus:9090", "ftp://p:21", "http://", "://x", "http//p:9090"} {
		if _, err := New(Access{URL: u}, 0); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("New(%q) err = %v, want ErrInvalidURL", u, err)
		}
	}
	if c, err := New(Access{URL: "http://prometheus.monitoring:9090/prefix/"}, 0); err != nil || c.timeout != DefaultTimeout {
		t.Errorf("New: %v, %v", c, err)
	}
	for name, a := range map[string]Access{
		"bearer and basic auth": {URL: "https://p:9090", Credentials: "t", Username: "u", Password: "p"},
		"a CA that is not PEM":  {URL: "https://p:9090", CA: "not a certificate"},
	} {
		if _, err := New(a, 0); !errors.Is(err, ErrInvalidConnection) || errors.Is(err, ErrInvalidURL) {
			t.Errorf("%s: err = %v, want ErrInvalidConnection", name, err)
		}
	}
	a := Access{URL: "https://p:9090", Credentials: "secret-token"}
	if k := a.Key(); strings.Contains(k, "secret-token") || k == (Access{URL: a.URL}).Key() || k != a.Key() {
		t.Errorf("Key %q: want a stable key that holds no secret and tells credentials apart", k)
	}
}

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ReasonQueriesSucceeded},
		{fmt.Errorf("GPUTemperature: %w: nothing", ErrNoData), ReasonNoData},
		{fmt.Errorf("PromQL: %w: parse error", ErrBadQuery), ReasonInvalidQuery},
		{fmt.Errorf("x: %w: %w", ErrUnavailable, errors.New("connection refused")), ReasonPrometheusUnavailable},
		{fmt.Errorf("%w %q", ErrInvalidURL, "x"), ReasonInvalidPrometheusURL},
		{fmt.Errorf("%w: Secret %q not found", ErrInvalidConnection, "x"), ReasonInvalidPrometheusConnection},
		{fmt.Errorf("%w: %w: client error: 401", ErrUnavailable, ErrUnauthorized), ReasonPrometheusUnauthorized},
		{fmt.Errorf("%w: %w: x509", ErrUnavailable, ErrUntrusted), ReasonPrometheusUntrusted},
		{errors.New("something else"), ReasonQueryFailed},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
