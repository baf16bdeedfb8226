package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

func TestMinimalManifestsGetDocumentedDefaults(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()

	qs := createAndRead(t, ns, minimalQwenService, &v1.QwenService{})
	checkEqual(t, "spec.engine.type", qs.Spec.Engine.Type, v1.EngineVLLM)
	checkEqual(t, "spec.engine.port", qs.Spec.Engine.Port, int32(8000))
	checkEqual(t, "spec.replicas", deref(qs.Spec.Replicas), int32(1))
	checkEqual(t, "spec.model.reasoning.enabled", deref(qs.Spec.Model.Reasoning.Enabled), true)
	checkEqual(t, "spec.model.reasoning.parser", qs.Spec.Model.Reasoning.Parser, "qwen3")
	checkEqual(t, "spec.resources.gpuResourceName", qs.Spec.Resources.GPUResourceName, "nvidia.com/gpu")
	checkEqual(t, "spec.gateway.replicas", deref(qs.Spec.Gateway.Replicas), int32(2))
	checkEqual(t, "spec.gateway.maxRequestBodyBytes", deref(qs.Spec.Gateway.MaxRequestBodyBytes), int64(1048576))
	checkEqual(t, "spec.networkPolicy.enabled", deref(qs.Spec.NetworkPolicy.Enabled), true)
	checkEqual(t, "spec.gateway.accessLog", qs.Spec.Gateway.AccessLog == nil, true)
	logged := createAndRead(t, ns, strings.Replace(minimalQwenService, "{name: qs}", "{name: logged}", 1)+"  gateway: {accessLog: {}}\n", &v1.QwenService{})
	checkEqual(t, "spec.gateway.accessLog.mode", logged.Spec.Gateway.AccessLog.Mode, v1.AccessLogAll)
	checkEqual(t, "spec.gateway.accessLog.sample", deref(logged.Spec.Gateway.AccessLog.Sample), int32(1))

	rlp := createAndRead(t, ns, minimalRateLimitPolicy, &v1.RateLimitPolicy{})
	checkEqual(t, "spec.mode", rlp.Spec.Mode, v1.ModeEnforce)
	checkEqual(t, "spec.key.source", rlp.Spec.Key.Source, v1.KeyClientIP)
	checkEqual(t, "spec.algorithm", rlp.Spec.Algorithm, v1.AlgorithmHybrid)
	checkEqual(t, "spec.timezone", rlp.Spec.Timezone, "UTC")
	checkEqual(t, "spec.failureMode", rlp.Spec.FailureMode, v1.FailOpen)
	checkEqual(t, "spec.key.ipv6PrefixLength", deref(rlp.Spec.Key.IPv6PrefixLength), int32(64))
	checkEqual(t, "spec.assumedMaxTokens", deref(rlp.Spec.AssumedMaxTokens), int64(4096))

	dp := createAndRead(t, ns, minimalDegradationPlan, &v1.DegradationPlan{})
	checkEqual(t, "spec.prometheus.interval", dp.Spec.Prometheus.Interval.Duration, 15*time.Second)
	checkEqual(t, "spec.cooldown", dp.Spec.Cooldown.Duration, 2*time.Minute)
	checkEqual(t, "spec.recoveryMargin", dp.Spec.RecoveryMargin, int32(10))
	checkEqual(t, "spec.staticResponse.message", dp.Spec.StaticResponse.Message, "服务繁忙，请稍后再试")
	checkEqual(t, "spec.staticResponse.httpStatus", dp.Spec.StaticResponse.HTTPStatus, int32(200))
	checkEqual(t, "spec.circuitBreaker.failureThreshold", dp.Spec.CircuitBreaker.FailureThreshold, int32(5))
	checkEqual(t, "spec.circuitBreaker.recoveryTimeout", dp.Spec.CircuitBreaker.RecoveryTimeout.Duration, 30*time.Second)
	checkEqual(t, "spec.circuitBreaker.halfOpenRequests", dp.Spec.CircuitBreaker.HalfOpenRequests, int32(1))

	// A status written by a controller round-trips through the status subresource.
	dp.Status = v1.DegradationPlanStatus{ObservedGeneration: dp.Generation, Level: 2, Reasons: []string{"GPUTemperature=86.0 > 83 for 1m (L2)"}}
	if err := env.Client.Status().Update(ctx, dp); err != nil {
		t.Fatalf("status update: %v", err)
	}
	got := &v1.DegradationPlan{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(dp), got); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "status.level", got.Status.Level, int32(2))
}

func TestSamplesApplyWithDefaults(t *testing.T) {
	ns := namespace(t)
	root, err := tools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, "config", "samples", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	qs := createAndRead(t, ns, read("serving_v1alpha1_qwenservice.yaml"), &v1.QwenService{})
	checkEqual(t, "spec.model.name", qs.Spec.Model.Name, "Qwen/Qwen3-1.7B")
	if qs.Spec.Fallback == nil {
		t.Fatal("sample QwenService has no fallback")
	}
	checkEqual(t, "spec.fallback.model.name", qs.Spec.Fallback.Model.Name, "Qwen/Qwen3-0.6B")
	checkEqual(t, "spec.fallback.model.reasoning.parser", qs.Spec.Fallback.Model.Reasoning.Parser, "qwen3")
	checkEqual(t, "spec.engine.port", qs.Spec.Engine.Port, int32(8000))
	checkEqual(t, "spec.fallback.placement (one GPU for both models)", qs.Spec.Fallback.Placement, v1.FallbackSharedPod)

	rlp := createAndRead(t, ns, read("serving_v1alpha1_ratelimitpolicy.yaml"), &v1.RateLimitPolicy{})
	checkEqual(t, "spec.limits.requestsPerMinute", deref(rlp.Spec.Limits.RequestsPerMinute), int32(100))
	checkEqual(t, "spec.timezone", rlp.Spec.Timezone, "Asia/Shanghai")
	byName := map[string]int32{}
	for _, s := range rlp.Spec.Schedules {
		byName[s.Name] = deref(s.Limits.RequestsPerMinute)
	}
	checkEqual(t, "schedules", byName, map[string]int32{"daytime": 50, "night": 200})
	for _, s := range rlp.Spec.Schedules {
		if len(s.Days) != 0 {
			t.Errorf("schedule %s applies on %v only; the article's day and night hold every day", s.Name, s.Days)
		}
	}
	if len(rlp.Spec.Adaptive) != 1 || rlp.Spec.Adaptive[0].Signal != v1.SignalGPUTemperature || rlp.Spec.Adaptive[0].Scale != "0.5" {
		t.Errorf("adaptive = %+v, want one GPUTemperature rule with scale 0.5", rlp.Spec.Adaptive)
	}

	dp := createAndRead(t, ns, read("serving_v1alpha1_degradationplan.yaml"), &v1.DegradationPlan{})
	var levels []int32
	for _, l := range dp.Spec.Levels {
		levels = append(levels, l.Level)
	}
	checkEqual(t, "levels", levels, []int32{1, 2, 3, 4})
	if w := dp.Spec.Levels[0].When; len(w) != 1 || w[0].Signal != v1.SignalP95TimeToFirstTokenSeconds {
		t.Errorf("L1 triggers %+v, want time to first token (whole-answer latency keeps L1 on for any long stream)", w)
	}
	if c := dp.Spec.Cache; c == nil || !c.Enabled {
		t.Errorf("the sample plan serves no cached replies while the breaker is open: %+v", c)
	}
	checkEqual(t, "spec.circuitBreaker.failureThreshold", dp.Spec.CircuitBreaker.FailureThreshold, int32(5))
	checkEqual(t, "spec.circuitBreaker.recoveryTimeout", dp.Spec.CircuitBreaker.RecoveryTimeout.Duration, 30*time.Second)
	checkEqual(t, "spec.staticResponse.message", dp.Spec.StaticResponse.Message, "服务繁忙，请稍后再试")
}

func TestKubectlExplainShowsFieldDocs(t *testing.T) {
	out, err := env.KubectlRun(nil, "explain", "qwenservice.spec.engine")
	if err != nil {
		t.Fatalf("kubectl explain: %v\n%s", err, out)
	}
	for _, want := range []string{"gpuMemoryUtilization", "fraction of GPU memory vLLM may use", "hfTokenSecretRef", "VLLM", "Simulator"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl explain qwenservice.spec.engine lacks %q:\n%s", want, out)
		}
	}
	out, err = env.KubectlRun(nil, "get", "qs,rlp,dp", "-A")
	if err != nil {
		t.Fatalf("short names qs, rlp, dp: %v\n%s", err, out)
	}
}

// createAndRead creates a manifest in ns and reads it back into into.
func createAndRead[T client.Object](t *testing.T, ns, manifest string, into T) T {
	t.Helper()
	obj := decode(t, manifest)
	obj.SetNamespace(ns)
	ctx := context.Background()
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetKind(), err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), into); err != nil {
		t.Fatalf("reading %s back: %v", obj.GetKind(), err)
	}
	return into
}

func checkEqual[T any](t *testing.T, field string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", field, got, want)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// A Go client that leaves durations zero gets the schema defaults, as kubectl users do.
func TestGoClientZeroDurationsGetDefaults(t *testing.T) {
	ns := namespace(t)
	dp := &v1.DegradationPlan{}
	dp.Namespace, dp.Name = ns, "typed"
	dp.Spec.TargetRef.Name = "qwen3"
	dp.Spec.Levels = []v1.DegradationLevel{{Level: 1, When: []v1.Trigger{{Signal: v1.SignalQueueDepth, Above: "50"}}}}
	if err := env.Client.Create(context.Background(), dp); err != nil {
		t.Fatalf("creating a DegradationPlan with zero durations: %v", err)
	}
	checkEqual(t, "spec.prometheus.interval", dp.Spec.Prometheus.Interval.Duration, 15*time.Second)
	checkEqual(t, "spec.cooldown", dp.Spec.Cooldown.Duration, 2*time.Minute)
	checkEqual(t, "spec.circuitBreaker.recoveryTimeout", dp.Spec.CircuitBreaker.RecoveryTimeout.Duration, 30*time.Second)
}
