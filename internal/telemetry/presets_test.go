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

// Every signal of the API has a preset or is PromQL.
func TestEverySignalHasAPreset(t *testing.T) {
	for _, s := range []v1alpha1.Signal{
		v1alpha1.SignalGPUTemperature, v1alpha1.SignalGPUUtilization, v1alpha1.SignalGPUMemoryUsed,
		v1alpha1.SignalKVCacheUsage, v1alpha1.SignalQueueDepth, v1alpha1.SignalP95LatencySeconds, v1alpha1.SignalErrorRate,
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
	if len(presets) != 7 {
		t.Errorf("presets has %d entries; add the new signal to the list above", len(presets))
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
		if _, err := New(u, 0); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("New(%q) err = %v, want ErrInvalidURL", u, err)
		}
	}
	if c, err := New("http://prometheus.monitoring:9090/prefix/", 0); err != nil || c.timeout != DefaultTimeout {
		t.Errorf("New: %v, %v", c, err)
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
		{errors.New("something else"), ReasonQueryFailed},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
