package controllers

import (
	"fmt"
	"slices"
	"testing"
	"time"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// pollEvery is how often the benchmarks look at the API server.
const pollEvery = 10 * time.Millisecond

// waitUntil polls cond every pollEvery and returns when it first held, failing after limit.
func waitUntil(b *testing.B, limit time.Duration, what string, cond func() bool) time.Time {
	b.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return time.Now()
		}
		time.Sleep(pollEvery)
	}
	b.Fatalf("%s: not within %v", what, limit)
	return time.Time{}
}

func reportLatencies(b *testing.B, unit string, ds []time.Duration) {
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	b.ReportMetric((sum / time.Duration(len(ds))).Seconds(), "mean-"+unit)
	b.ReportMetric(ds[len(ds)-1].Seconds(), "max-"+unit)
}

// BenchmarkScheduleBoundaryToConfigMap measures the time from a schedule boundary (the
// instant the injected clock reads 09:00) to the gateway ConfigMap holding the new limit.
// Goal: at most 2 s.
func BenchmarkScheduleBoundaryToConfigMap(b *testing.B) {
	boundary := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	clk := &offsetClock{}
	clk.set(boundary.Add(-time.Hour))
	startPolicyManager(b, clk, "")
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		ns := newNamespace(b)
		clk.set(boundary.Add(-4 * time.Second))
		create(b, qwen3(ns))
		create(b, scheduledPolicy(ns))
		waitUntil(b, 30*time.Second, "base limit in the gateway config", func() bool { return gatewayRPM(b, ns) == 30 })
		realBoundary := boundary.Add(-time.Duration(clk.offset.Load()))
		if time.Now().After(realBoundary) {
			b.Fatalf("setup took longer than the 4 s before the boundary")
		}
		seen := waitUntil(b, 30*time.Second, "scheduled limit in the gateway config", func() bool { return gatewayRPM(b, ns) == 120 })
		lat = append(lat, seen.Sub(realBoundary))
	}
	reportLatencies(b, "s-boundary-to-configmap", lat)
}

// BenchmarkTelemetryCrossingToStatus measures the time from the exporter serving a GPU
// temperature above a level's threshold to the level in the plan's status, with a 1 s
// interval and Prometheus scraping every second. Goal: at most interval + 2 s.
func BenchmarkTelemetryCrossingToStatus(b *testing.B) {
	ns, exp, prom, clk := telemetryStack(b)
	plan := fastPlan(ns, prom.URL())
	plan.Spec.Levels = []v1alpha1.DegradationLevel{{Level: 4, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalGPUTemperature, Above: "90"}}}}
	create(b, plan)
	level := func() int32 { return getPlan(b, ns, plan.Name).Status.Level }
	waitUntil(b, 30*time.Second, "telemetry read", func() bool { return getPlan(b, ns, plan.Name).Status.Signals["GPUTemperature"] == "60.0" })
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		exp.SetGPUTemperature(enginePod, 95)
		seen := waitUntil(b, 30*time.Second, "level 4", func() bool { return level() == 4 })
		lat = append(lat, seen.Sub(start))
		exp.SetGPUTemperature(enginePod, 60)
		clk.advance(plan.Spec.Cooldown.Duration)
		waitUntil(b, 30*time.Second, fmt.Sprintf("recovery %d", i), func() bool { return level() == 0 })
	}
	reportLatencies(b, "s-crossing-to-status", lat)
}
