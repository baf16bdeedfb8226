package telemetry_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/telemetry"
	"github.com/qwenops/qwen-operator/internal/testutil/promtest"
)

const (
	engineA  = "qwen3-engine-7d4b9c6f5-x2k9p"
	engineB  = "qwen3-engine-7d4b9c6f5-m3n4p"
	engineC  = "qwen3-engine-7d4b9c6f5-q8w2e" // on a node whose DCGM exporter is scraped without honor_labels
	gateway  = "qwen3-gateway-5f6d7c8b9-abcde"
	fallback = "qwen3-fallback-6c9d8b7f4-zz9xq"
	otherSvc = "qwen-engine-5b8c9d7f6-zz9xq"         // QwenService "qwen"
	nested   = "qwen3-engine-engine-5b8c9d7f6-zz9xq" // QwenService "qwen3-engine"
	otherGW  = "qwen-gateway-5b8c9d7f6-zz9xq"
)

var target = telemetry.Target{Namespace: "ai", Service: "qwen3", Engine: "qwen3-engine", Gateway: "qwen3-gateway"}

// sglang is a QwenService of engine type SGLang in the same namespace, with two engine pods.
var (
	sglang     = telemetry.Target{Namespace: "ai", Service: "chat", Engine: "chat-engine", Gateway: "chat-gateway", EngineType: v1alpha1.EngineSGLang}
	sglangPods = []string{"chat-engine-6b7c8d9f5-r2d2x", "chat-engine-6b7c8d9f5-c3p0z"}
)

func preset(s v1alpha1.Signal) v1alpha1.Trigger { return v1alpha1.Trigger{Signal: s} }

func promql(q string) v1alpha1.Trigger {
	return v1alpha1.Trigger{Signal: v1alpha1.SignalPromQL, Query: q}
}

// decoy serves extreme values on pods that are not qwen3's engine or gateway.
func decoy(e *promtest.Exporter, pods ...string) {
	for _, pod := range pods {
		e.SetGPUTemperature(pod, 99)
		e.SetGPUUtilization(pod, 100)
		e.SetGPUMemory(pod, 39000, 1000)
		e.SetQueueDepth(pod, 100)
		e.SetKVCacheUsage(pod, 0.99)
	}
}

// TestAgainstPrometheus runs every preset, both DCGM labellings, substitution and each
// error against a real Prometheus scraping exporters the test controls. Subtests run in
// order and share the Prometheus (it takes ~5s to scrape for the first time).
func TestAgainstPrometheus(t *testing.T) {
	native := promtest.NewExporter(t, "ai")
	relabelled := promtest.NewExporter(t, "ai")
	relabelled.SetExportedLabels(true)
	staging := promtest.NewExporter(t, "staging") // same pod names, another namespace

	native.SetGPUTemperature(engineA, 71)
	native.SetGPUUtilization(engineA, 40)
	native.SetGPUMemory(engineA, 30000, 10000)
	native.SetQueueDepth(engineA, 3)
	native.SetKVCacheUsage(engineA, 0.2)
	native.SetGPUTemperature(engineB, 78)
	native.SetGPUUtilization(engineB, 60)
	native.SetGPUMemory(engineB, 20000, 20000)
	native.SetQueueDepth(engineB, 4)
	native.SetKVCacheUsage(engineB, 0.35)
	native.SetGatewayTraffic(gateway, 7, 3, 6)
	// 10 static 503s: answers, not errors (ErrorRate 3/20, not 13/20).
	native.SetGatewayStatic(gateway, 10)
	native.SetTimeToFirstToken(engineA, 5, 0.2)
	for i, pod := range sglangPods {
		native.SetSGLang(pod)
		native.SetQueueDepth(pod, float64(2+7*i))
		native.SetKVCacheUsage(pod, 0.5+0.3*float64(i))
		native.SetTimeToFirstToken(pod, 4, 3)
	}
	decoy(native, fallback, otherSvc, nested)
	native.SetGatewayTraffic(otherGW, 0, 10, 100)
	decoy(relabelled, otherSvc)
	decoy(staging, engineA, engineB)
	staging.SetGatewayTraffic(gateway, 0, 10, 100)

	prom := promtest.Start(t, native.Target(), relabelled.Target(), staging.Target())
	c, err := telemetry.New(telemetry.Access{URL: prom.URL()}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("presets", func(t *testing.T) {
		expect(t, c, target, map[v1alpha1.Signal]float64{
			v1alpha1.SignalGPUTemperature:             78,
			v1alpha1.SignalGPUUtilization:             50,
			v1alpha1.SignalGPUMemoryUsed:              0.75,
			v1alpha1.SignalKVCacheUsage:               0.35,
			v1alpha1.SignalQueueDepth:                 7,
			v1alpha1.SignalP95TimeToFirstTokenSeconds: 0.2425, // 0.2s first tokens, bucket (0.1, 0.25]
			v1alpha1.SignalP95LatencySeconds:          9.75,   // 6s observations, bucket (5, 10]
			v1alpha1.SignalErrorRate:                  0.15,
		})
	})

	// The engine signals of an SGLang service read SGLang's metrics (and only its pods'): the
	// same PromQL shape over sglang:num_queue_reqs, sglang:token_usage and
	// sglang:time_to_first_token_seconds.
	t.Run("SGLang engine presets", func(t *testing.T) {
		expect(t, c, sglang, map[v1alpha1.Signal]float64{
			v1alpha1.SignalQueueDepth:                 11,
			v1alpha1.SignalKVCacheUsage:               0.8,
			v1alpha1.SignalP95TimeToFirstTokenSeconds: 4.875, // 3s, bucket (2.5, 5]
		})
		vllmTarget := sglang
		vllmTarget.EngineType = v1alpha1.EngineVLLM
		if _, err := c.Query(ctx(t), preset(v1alpha1.SignalQueueDepth), vllmTarget, time.Now()); !errors.Is(err, telemetry.ErrNoData) {
			t.Errorf("vLLM presets on SGLang pods: err = %v, want ErrNoData", err)
		}
	})

	t.Run("exported_pod labelling alone", func(t *testing.T) {
		native.DeleteGPU(engineA)
		native.DeleteGPU(engineB)
		relabelled.SetGPUTemperature(engineC, 83)
		relabelled.SetGPUUtilization(engineC, 20)
		relabelled.SetGPUMemory(engineC, 10000, 30000)
		expect(t, c, target, map[v1alpha1.Signal]float64{
			v1alpha1.SignalGPUTemperature: 83,
			v1alpha1.SignalGPUUtilization: 20,
			v1alpha1.SignalGPUMemoryUsed:  0.25,
		})
	})

	t.Run("both labellings at once", func(t *testing.T) {
		native.SetGPUTemperature(engineA, 71)
		native.SetGPUUtilization(engineA, 40)
		native.SetGPUMemory(engineA, 30000, 10000)
		expect(t, c, target, map[v1alpha1.Signal]float64{
			v1alpha1.SignalGPUTemperature: 83,
			v1alpha1.SignalGPUUtilization: 30,
			v1alpha1.SignalGPUMemoryUsed:  0.75,
		})
	})

	t.Run("PromQL substitution", func(t *testing.T) {
		for q, want := range map[string]float64{
			`sum(vllm:num_requests_waiting{namespace="$namespace",pod=~"$pods"})`:                        7,
			`count(qwen_gateway_requests_total{namespace="$namespace",pod=~"$gatewayPods"})`:             3, // 200, 500, static 503
			`scalar(count(vllm:num_requests_waiting{namespace="$namespace",pod=~"$service-engine-.*"}))`: 3, // A, B and the nested decoy
		} {
			if got, err := c.Query(ctx(t), promql(q), target, time.Now()); err != nil || got != want {
				t.Errorf("%s = %v, %v; want %v", q, got, err, want)
			}
		}
	})

	t.Run("ErrBadQuery", func(t *testing.T) {
		for q, msg := range map[string]string{
			`sum(rate(vllm:num_requests_waiting[5m])`:                             "parse error",  // Prometheus's own message
			`vllm:num_requests_waiting + on(namespace) vllm:num_requests_waiting`: "many-to-many", // 422 execution error
			`vllm:num_requests_waiting{namespace="$namespace"}`:                   "series",
			`vllm:num_requests_waiting[1m]`:                                       "matrix",
		} {
			_, err := c.Query(ctx(t), promql(q), target, time.Now())
			if !errors.Is(err, telemetry.ErrBadQuery) || !strings.Contains(err.Error(), msg) {
				t.Errorf("%s: err = %v, want ErrBadQuery mentioning %q", q, err, msg)
			}
			t.Log(err)
			if telemetry.Reason(err) != telemetry.ReasonInvalidQuery {
				t.Errorf("%s: reason %s", q, telemetry.Reason(err))
			}
		}
	})

	t.Run("ErrNoData", func(t *testing.T) {
		absent := telemetry.Target{Namespace: "ai", Service: "absent", Engine: "absent-engine", Gateway: "absent-gateway"}
		for _, s := range []v1alpha1.Signal{v1alpha1.SignalGPUTemperature, v1alpha1.SignalGPUUtilization, v1alpha1.SignalGPUMemoryUsed,
			v1alpha1.SignalKVCacheUsage, v1alpha1.SignalQueueDepth, v1alpha1.SignalP95TimeToFirstTokenSeconds, v1alpha1.SignalP95LatencySeconds, v1alpha1.SignalErrorRate} {
			if _, err := c.Query(ctx(t), preset(s), absent, time.Now()); !errors.Is(err, telemetry.ErrNoData) {
				t.Errorf("%s of a service without pods: err = %v, want ErrNoData", s, err)
			}
		}
		for _, q := range []string{`sum(no_such_metric)`, `scalar(no_such_metric)`} {
			_, err := c.Query(ctx(t), promql(q), target, time.Now())
			if !errors.Is(err, telemetry.ErrNoData) || telemetry.Reason(err) != telemetry.ReasonNoData {
				t.Errorf("%s: err = %v, want ErrNoData", q, err)
			}
		}
		// A value in Prometheus's past is read at that instant: before the first scrape there is none.
		if _, err := c.Query(ctx(t), preset(v1alpha1.SignalQueueDepth), target, time.Now().Add(-time.Hour)); !errors.Is(err, telemetry.ErrNoData) {
			t.Errorf("an hour ago: err = %v, want ErrNoData", err)
		}
	})

	t.Run("ErrUnavailable on timeout", func(t *testing.T) {
		impatient, err := telemetry.New(telemetry.Access{URL: prom.URL()}, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		prom.Pause()
		defer prom.Resume()
		start := time.Now()
		_, err = impatient.Query(ctx(t), preset(v1alpha1.SignalGPUTemperature), target, time.Now())
		if !errors.Is(err, telemetry.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("paused Prometheus: err = %v, want ErrUnavailable wrapping the deadline", err)
		}
		// The error wraps the deadline (checked above): the timeout was honoured. This bound
		// only catches a query that ignored it and waited for Prometheus' own (2 minutes).
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("the query took %v, want about the 300ms timeout", d)
		}
	})

	t.Run("ErrUnavailable when stopped", func(t *testing.T) {
		prom.Stop()
		_, err := c.Query(ctx(t), preset(v1alpha1.SignalGPUTemperature), target, time.Now())
		if !errors.Is(err, telemetry.ErrUnavailable) || telemetry.Reason(err) != telemetry.ReasonPrometheusUnavailable {
			t.Errorf("stopped Prometheus: err = %v, want ErrUnavailable", err)
		}
		t.Log(err)
		if !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("the error should say why: %v", err)
		}
	})
}

// TestAgainstSecuredPrometheus reads a Prometheus started with a --web.config.file that
// requires TLS and basic auth, directly and through a bearer-token proxy (as Thanos Querier
// and OpenShift monitoring sit behind kube-rbac-proxy): the right credentials and CA read the
// value; missing or wrong credentials are ErrUnauthorized, an unknown CA or another server
// name ErrUntrusted, each with its reason.
func TestAgainstSecuredPrometheus(t *testing.T) {
	exp := promtest.NewExporter(t, "ai")
	exp.SetGPUTemperature(engineA, 64)
	prom := promtest.StartSecure(t, exp.Target())
	sec := prom.Security()
	proxyURL, proxyCA := promtest.BearerProxy(t, prom, "thanos-token")
	otherCA := promtest.NewCA(t)

	ok := map[string]telemetry.Access{
		"basic auth and the CA":                   {URL: prom.URL(), Username: sec.Username, Password: sec.Password, CA: string(sec.CA)},
		"basic auth, the CA and its server name":  {URL: prom.URL(), Username: sec.Username, Password: sec.Password, CA: string(sec.CA), ServerName: promtest.ServerName},
		"basic auth without verification":         {URL: prom.URL(), Username: sec.Username, Password: sec.Password, InsecureSkipVerify: true},
		"a bearer token through the proxy":        {URL: proxyURL, Credentials: "thanos-token", CA: string(proxyCA)},
		"an explicit Bearer type through a proxy": {URL: proxyURL, AuthType: "Bearer", Credentials: "thanos-token", CA: string(proxyCA)},
	}
	for name, a := range ok {
		c, err := telemetry.New(a, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if v, err := c.Query(ctx(t), preset(v1alpha1.SignalGPUTemperature), target, time.Now()); err != nil || v != 64 {
			t.Errorf("%s: %v, %v; want 64", name, v, err)
		}
	}

	for name, tc := range map[string]struct {
		a      telemetry.Access
		reason string
	}{
		"no credentials":             {telemetry.Access{URL: prom.URL(), CA: string(sec.CA)}, telemetry.ReasonPrometheusUnauthorized},
		"a wrong password":           {telemetry.Access{URL: prom.URL(), Username: sec.Username, Password: "guess", CA: string(sec.CA)}, telemetry.ReasonPrometheusUnauthorized},
		"a wrong token":              {telemetry.Access{URL: proxyURL, Credentials: "stolen", CA: string(proxyCA)}, telemetry.ReasonPrometheusUnauthorized},
		"the system roots":           {telemetry.Access{URL: prom.URL(), Username: sec.Username, Password: sec.Password}, telemetry.ReasonPrometheusUntrusted},
		"another CA":                 {telemetry.Access{URL: prom.URL(), Username: sec.Username, Password: sec.Password, CA: string(otherCA)}, telemetry.ReasonPrometheusUntrusted},
		"a name the cert lacks":      {telemetry.Access{URL: prom.URL(), Username: sec.Username, Password: sec.Password, CA: string(sec.CA), ServerName: "thanos.example"}, telemetry.ReasonPrometheusUntrusted},
		"plain http to an https API": {telemetry.Access{URL: "http" + strings.TrimPrefix(prom.URL(), "https"), Username: sec.Username, Password: sec.Password}, telemetry.ReasonPrometheusUnavailable},
	} {
		c, err := telemetry.New(tc.a, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = c.Query(ctx(t), preset(v1alpha1.SignalGPUTemperature), target, time.Now())
		if !errors.Is(err, telemetry.ErrUnavailable) || telemetry.Reason(err) != tc.reason {
			t.Errorf("%s: err = %v (reason %s), want %s", name, err, telemetry.Reason(err), tc.reason)
		}
	}
}

// expect polls each signal of target until it returns the wanted value (a scrape may be in flight).
func expect(t *testing.T, c *telemetry.Client, target telemetry.Target, want map[v1alpha1.Signal]float64) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for s, w := range want {
		deadline := time.After(15 * time.Second)
	poll:
		for {
			got, err := c.Query(ctx(t), preset(s), target, time.Now())
			if err == nil && math.Abs(got-w) <= 1e-9*math.Max(1, math.Abs(w)) {
				break
			}
			select {
			case <-deadline:
				t.Errorf("%s = %v, %v; want %v", s, got, err, w)
				break poll
			case <-tick.C:
			}
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}
