package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/telemetry"
	"github.com/qwenops/qwen-operator/internal/testutil/promtest"
)

// TestErrorRateIgnoresStaticReplies runs the gateway's own /metrics through a real
// Prometheus and evaluates the ErrorRate preset a DegradationPlan uses: 3 engine 500s and 7
// static 503 replies (level 4, httpStatus 503) are an error rate of 0.3, not 1. Counting the
// static replies as errors would hold a plan that enters L4 on ErrorRate at L4 for good.
func TestErrorRateIgnoresStaticReplies(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	e.status.Store(http.StatusInternalServerError)
	l0 := basicConfig(e.srv.URL) + "breaker: {failureThreshold: 1000}\n"
	l4 := l0 + "degradation: {level: 4, staticResponse: {message: busy, httpStatus: 503}}\n"
	tg := startGateway(t, nil, l0)
	// The series exist at 0 before the first scrape, so that rate() sees every request.
	tg.m.requests.WithLabelValues("Qwen3-1.7B", "500", "0", "primary")
	tg.m.requests.WithLabelValues("Qwen3-1.7B", "503", "4", "static")
	admin := httptest.NewServer(tg.Admin())
	t.Cleanup(admin.Close)

	const pod = "qwen3-gateway-5f6d7c8b9-abcde"
	prom := promtest.StartWith(t, promtest.Options{ScrapeConfigs: fmt.Sprintf(`- job_name: gateway
  static_configs:
  - targets: [%q]
    labels: {namespace: ai, pod: %s}
`, strings.TrimPrefix(admin.URL, "http://"), pod)})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := prom.WaitForValue(ctx, `count(qwen_gateway_requests_total{pod="`+pod+`"})`, 2); err != nil {
		t.Fatal(err)
	}

	send := func(config string, n, want int) {
		if err := tg.Load([]byte(config)); err != nil {
			t.Fatal(err)
		}
		for range n {
			resp := tg.post(t, "/v1/chat/completions", chatBody)
			readAll(t, resp)
			if resp.StatusCode != want {
				t.Fatalf("status %d, want %d", resp.StatusCode, want)
			}
		}
	}
	send(l0, 3, http.StatusInternalServerError)
	send(l4, 7, http.StatusServiceUnavailable)

	q, err := telemetry.Expr(v1alpha1.Trigger{Signal: v1alpha1.SignalErrorRate},
		telemetry.Target{Namespace: "ai", Service: "qwen3", Engine: "qwen3-engine", Gateway: "qwen3-gateway"})
	if err != nil {
		t.Fatal(err)
	}
	if err := prom.WaitForValue(ctx, q, 0.3); err != nil {
		t.Fatalf("ErrorRate: %v", err)
	}
}
