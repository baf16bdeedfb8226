package controllers

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
	"github.com/qwenops/qwen-operator/internal/render"
	"github.com/qwenops/qwen-operator/internal/testutil/promtest"
)

// offsetClock is the real clock shifted by a settable offset. Requeues still happen in real
// time, so a test can put "now" just before a schedule boundary and watch the controller wake
// up exactly at it, or jump past a cooldown, without sleeping.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time                  { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// set makes Now() return t at this moment.
func (c *offsetClock) set(t time.Time) { c.offset.Store(int64(time.Until(t))) }

// advance moves Now() forward by d.
func (c *offsetClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// startPolicyManager runs the RateLimitPolicy and DegradationPlan reconcilers (the suite's
// manager runs the QwenService reconciler) with clk and promURL until the test ends; tweaks
// change the DegradationPlan reconciler's settings.
func startPolicyManager(t testing.TB, clk *offsetClock, promURL string, tweaks ...func(*DegradationPlanReconciler)) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rlp := &RateLimitPolicyReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("qwen-operator"), Clock: clk,
		PrometheusURL: promURL, TelemetryInterval: time.Second}
	dp := &DegradationPlanReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("qwen-operator"), Clock: clk, PrometheusURL: promURL}
	for _, tweak := range tweaks {
		tweak(dp)
	}
	if err := SetupIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	if err := rlp.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	if err := dp.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("policy manager: %v", err)
		}
	})
}

// gatewayConfig is the parsed gateway config of the qwen3 service in ns, nil when absent.
func gatewayConfig(t testing.TB, ns string) *gatewayconfig.Config {
	t.Helper()
	raw := configOf(t, ns, "qwen3")
	if raw == "" {
		return nil
	}
	c, err := gatewayconfig.Load([]byte(raw))
	if err != nil {
		t.Fatalf("the rendered gateway config does not load: %v", err)
	}
	return c
}

func gatewayRPM(t testing.TB, ns string) int64 {
	if c := gatewayConfig(t, ns); c != nil && c.RateLimit != nil {
		return c.RateLimit.Limits.RequestsPerMinute
	}
	return -1
}

func ingressRPM(t testing.TB, ns string) string {
	ing := &networkingv1.Ingress{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "qwen3"}, ing); err != nil {
		return ""
	}
	return ing.Annotations[render.AnnotationLimitRPM]
}

func getPolicy(t testing.TB, ns, name string) *v1alpha1.RateLimitPolicy {
	t.Helper()
	p := &v1alpha1.RateLimitPolicy{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func getPlan(t testing.TB, ns, name string) *v1alpha1.DegradationPlan {
	t.Helper()
	p := &v1alpha1.DegradationPlan{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitConditionOf waits until get()'s condition typ has status and reason, and returns it.
func waitConditionOf[T any](t testing.TB, what string, get func() (T, []metav1.Condition), typ string, status metav1.ConditionStatus, reason string) T {
	t.Helper()
	var obj T
	eventually(t, fmt.Sprintf("%s %s=%s/%s", what, typ, status, reason), func() error {
		var conds []metav1.Condition
		obj, conds = get()
		c := meta.FindStatusCondition(conds, typ)
		if c == nil || c.Status != status || c.Reason != reason {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	return obj
}

func waitPolicyCondition(t testing.TB, ns, name, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	waitConditionOf(t, name, func() (*v1alpha1.RateLimitPolicy, []metav1.Condition) {
		p := getPolicy(t, ns, name)
		return p, p.Status.Conditions
	}, typ, status, reason)
}

func waitPlanCondition(t testing.TB, ns, name, typ string, status metav1.ConditionStatus, reason string) *v1alpha1.DegradationPlan {
	t.Helper()
	return waitConditionOf(t, name, func() (*v1alpha1.DegradationPlan, []metav1.Condition) {
		p := getPlan(t, ns, name)
		return p, p.Status.Conditions
	}, typ, status, reason)
}

// waitChain waits until the policy's effective rpm reached the gateway ConfigMap and the
// ingress-nginx annotation.
func waitChain(t testing.TB, ns string, schedule string, rpm int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("schedule %q at %d/min in status, gateway config and ingress", schedule, rpm), func() error {
		p := getPolicy(t, ns, "qwen3-limits")
		if e := p.Status.Effective; p.Status.ActiveSchedule != schedule || e == nil || int64(ptr.Deref(e.Limits.RequestsPerMinute, 0)) != rpm {
			return fmt.Errorf("status: schedule %q effective %+v", p.Status.ActiveSchedule, e)
		}
		if got := gatewayRPM(t, ns); got != rpm {
			return fmt.Errorf("gateway config rpm %d", got)
		}
		if got := ingressRPM(t, ns); got != strconv.FormatInt(rpm, 10) {
			return fmt.Errorf("ingress limit-rpm %q", got)
		}
		return nil
	})
}

// scheduledPolicy is 30/min, 120/min from 09:00 to 18:00 UTC.
func scheduledPolicy(ns string) *v1alpha1.RateLimitPolicy {
	p := limitsPolicy(ns, "qwen3-limits", 30)
	p.Spec.Timezone = "UTC"
	p.Spec.Schedules = []v1alpha1.Schedule{{Name: "daytime", Start: "09:00", End: "18:00", Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](120)}}}
	return p
}

// TestScheduleBoundaryReachesGatewayAndIngress puts the clock 8 s before 09:00 UTC: the
// policy controller must wake up at the boundary by itself (it requeues exactly at
// nextTransitionTime) and the new limit must reach the gateway ConfigMap and the Ingress.
func TestScheduleBoundaryReachesGatewayAndIngress(t *testing.T) {
	ns := newNamespace(t)
	boundary := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	clk := &offsetClock{}
	clk.set(boundary.Add(-8 * time.Second))
	startPolicyManager(t, clk, "")
	create(t, qwen3(ns))
	create(t, scheduledPolicy(ns))

	waitChain(t, ns, "", 30)
	p := getPolicy(t, ns, "qwen3-limits")
	if p.Status.NextTransitionTime == nil || !p.Status.NextTransitionTime.Time.Equal(boundary) {
		t.Fatalf("nextTransitionTime %v, want %v", p.Status.NextTransitionTime, boundary)
	}
	waitPolicyCondition(t, ns, "qwen3-limits", v1alpha1.ConditionAccepted, metav1.ConditionTrue, ReasonAccepted)
	// No edit, no event: the controller's own requeue crosses the boundary.
	waitChain(t, ns, "daytime", 120)
	if next := getPolicy(t, ns, "qwen3-limits").Status.NextTransitionTime; next == nil || !next.Time.Equal(boundary.Add(9*time.Hour)) {
		t.Fatalf("nextTransitionTime after the switch %v, want 18:00", next)
	}
	waitObjectEvent(t, ns, "RateLimitPolicy", "qwen3-limits", "LimitsChanged")
}

// enginePod is an engine pod name of the qwen3 service, as the telemetry presets match it.
const enginePod = "qwen3-engine-7d9f8-x2k4p"

// telemetryStack starts, for one test, a namespace with the qwen3 service, an exporter
// serving its GPU at 60 °C, a real Prometheus scraping it, and the policy reconcilers on an
// offset clock reading that Prometheus.
func telemetryStack(tb testing.TB) (string, *promtest.Exporter, *promtest.Prometheus, *offsetClock) {
	tb.Helper()
	return telemetryStackWith(tb)
}

// telemetryStackWith is telemetryStack with tweaks to the DegradationPlan reconciler.
func telemetryStackWith(tb testing.TB, tweaks ...func(*DegradationPlanReconciler)) (string, *promtest.Exporter, *promtest.Prometheus, *offsetClock) {
	tb.Helper()
	ns := newNamespace(tb)
	exp := promtest.NewExporter(tb, ns)
	exp.SetGPUTemperature(enginePod, 60)
	prom := promtest.Start(tb, exp.Target())
	clk := &offsetClock{}
	startPolicyManager(tb, clk, prom.URL(), tweaks...)
	create(tb, qwen3(ns))
	return ns, exp, prom, clk
}

// fastPlan is degradePlan reading promURL every second.
func fastPlan(ns, promURL string) *v1alpha1.DegradationPlan {
	plan := degradePlan(ns)
	plan.Spec.Prometheus = v1alpha1.PrometheusSpec{PrometheusConnection: v1alpha1.PrometheusConnection{URL: promURL}, Interval: metav1.Duration{Duration: time.Second}}
	return plan
}

// waitObjectEvent waits for an Event with reason about the named object of kind.
func waitObjectEvent(t testing.TB, ns, kind, name, reason string) {
	t.Helper()
	eventually(t, kind+" Event "+reason, func() error {
		var list eventsv1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == kind && e.Regarding.Name == name && e.Reason == reason {
				return nil
			}
		}
		return fmt.Errorf("no %s Event on %s %s", reason, kind, name)
	})
}

// TestAdaptiveRuleHalvesLimitsWhileHot: above 80 °C the sample rule halves the limits, in
// status, the gateway ConfigMap and the Ingress; cooled down, they come back.
func TestAdaptiveRuleHalvesLimitsWhileHot(t *testing.T) {
	ns, exp, _, _ := telemetryStack(t)
	p := limitsPolicy(ns, "qwen3-limits", 60)
	p.Spec.Adaptive = []v1alpha1.AdaptiveRule{{Trigger: v1alpha1.Trigger{Signal: v1alpha1.SignalGPUTemperature, Above: "80"}, Scale: "0.5"}}
	create(t, p)

	waitChain(t, ns, "", 60)
	exp.SetGPUTemperature(enginePod, 86)
	waitChain(t, ns, "", 30)
	if s := getPolicy(t, ns, "qwen3-limits").Status.AdaptiveScale; s != "0.5" {
		t.Fatalf("adaptiveScale %q, want 0.5", s)
	}
	exp.SetGPUTemperature(enginePod, 70)
	waitChain(t, ns, "", 60)
}

// TestDegradationFollowsTelemetry drives the GPU temperature through each level's threshold
// and back, then stops Prometheus: the level follows up at once, steps down only after the
// cooldown, and is held without telemetry.
func TestDegradationFollowsTelemetry(t *testing.T) {
	ns, exp, prom, clk := telemetryStack(t)
	plan := fastPlan(ns, prom.URL())
	plan.Spec.Levels = nil
	for level, above := range map[int32]string{1: "70", 2: "80", 3: "85", 4: "90"} {
		plan.Spec.Levels = append(plan.Spec.Levels, v1alpha1.DegradationLevel{Level: level, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalGPUTemperature, Above: v1alpha1.Decimal(above)}}})
	}
	create(t, plan)

	waitLevel := func(level int32) {
		t.Helper()
		eventually(t, fmt.Sprintf("level %d in the plan, the service and the gateway config", level), func() error {
			if got := getPlan(t, ns, plan.Name).Status.Level; got != level {
				return fmt.Errorf("plan at %d", got)
			}
			if got := getQS(t, ns, "qwen3").Status.DegradationLevel; got != level {
				return fmt.Errorf("service at %d", got)
			}
			if c := gatewayConfig(t, ns); c == nil || c.Degradation.Level != level {
				return fmt.Errorf("gateway config %+v", c)
			}
			return nil
		})
	}
	waitPlanCondition(t, ns, plan.Name, v1alpha1.ConditionTelemetryAvailable, metav1.ConditionTrue, "QueriesSucceeded")
	waitLevel(0)
	for _, s := range []struct {
		temp  float64
		level int32
	}{{75, 1}, {82, 2}, {87, 3}, {95, 4}} {
		exp.SetGPUTemperature(enginePod, s.temp)
		waitLevel(s.level)
	}
	waitObjectEvent(t, ns, "DegradationPlan", plan.Name, "Degraded")

	// Cooled down: the level holds for the 2m cooldown (the clock stays put), then drops.
	exp.SetGPUTemperature(enginePod, 60)
	if err := prom.WaitForValue(context.Background(), `DCGM_FI_DEV_GPU_TEMP`, 60); err != nil {
		t.Fatal(err)
	}
	// Two evaluations at 60 °C have happened once signals shows it; the level must still be 4.
	eventually(t, "signals show 60 °C", func() error {
		if got := getPlan(t, ns, plan.Name).Status.Signals["GPUTemperature"]; got != "60.0" {
			return fmt.Errorf("signals GPUTemperature=%s", got)
		}
		return nil
	})
	if got := getPlan(t, ns, plan.Name).Status.Level; got != 4 {
		t.Fatalf("level %d during the cooldown, want 4 held", got)
	}
	clk.advance(2 * time.Minute)
	waitLevel(0)
	waitObjectEvent(t, ns, "DegradationPlan", plan.Name, "Recovered")

	// Prometheus stopped: the level is held and TelemetryAvailable turns False.
	exp.SetGPUTemperature(enginePod, 95)
	waitLevel(4)
	prom.Stop()
	got := waitPlanCondition(t, ns, plan.Name, v1alpha1.ConditionTelemetryAvailable, metav1.ConditionFalse, "PrometheusUnavailable")
	clk.advance(10 * time.Minute)
	waitPlanCondition(t, ns, plan.Name, v1alpha1.ConditionTelemetryAvailable, metav1.ConditionFalse, "PrometheusUnavailable")
	if p := getPlan(t, ns, plan.Name); p.Status.Level != 4 || got.Status.Level != 4 {
		t.Fatalf("level %d without telemetry, want 4 held", p.Status.Level)
	}
	if p := getPlan(t, ns, plan.Name); len(p.Status.History) == 0 || p.Status.History[len(p.Status.History)-1].Level != 4 {
		t.Fatalf("history %+v", p.Status.History)
	}
}

// TestPolicyBadInput: what the schema cannot check is reported in conditions.
func TestPolicyBadInput(t *testing.T) {
	ns, _, prom, _ := telemetryStack(t)

	good := limitsPolicy(ns, "qwen3-limits", 40)
	create(t, good)
	waitChain(t, ns, "", 40)

	// A newer policy on the same target is refused; the older keeps the gateway. (Creation
	// times have one-second resolution; within one second the name decides.)
	newer := limitsPolicy(ns, "qwen3-limits-v2", 500)
	create(t, newer)
	waitPolicyCondition(t, ns, newer.Name, v1alpha1.ConditionAccepted, metav1.ConditionFalse, ReasonConflicted)
	waitChain(t, ns, "", 40)

	// A policy whose target does not exist.
	orphan := limitsPolicy(ns, "orphan", 10)
	orphan.Spec.TargetRef.Name = "nobody"
	create(t, orphan)
	waitPolicyCondition(t, ns, "orphan", v1alpha1.ConditionAccepted, metav1.ConditionFalse, ReasonTargetNotFound)

	// A PromQL query Prometheus rejects.
	plan := fastPlan(ns, prom.URL())
	plan.Spec.Levels = []v1alpha1.DegradationLevel{{Level: 1, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalPromQL, Query: "sum(rate(", Above: "1"}}}}
	create(t, plan)
	p := waitPlanCondition(t, ns, plan.Name, v1alpha1.ConditionAccepted, metav1.ConditionFalse, "InvalidQuery")
	if p.Status.Level != 0 {
		t.Fatalf("a rejected query moved the level to %d", p.Status.Level)
	}
	if got := getQS(t, ns, "qwen3").Status.DegradationLevel; got != 0 {
		t.Fatalf("service level %d", got)
	}
}

// TestRejectedEditNeverReachesTheGateway edits an accepted policy into one its controller
// refuses (an unknown timezone), together with new limits, mode and key: none of the new
// settings may reach the gateway config or the Ingress at any point. A refused policy has no
// effect at all, so the limits go; fixing the spec brings the edit in.
func TestRejectedEditNeverReachesTheGateway(t *testing.T) {
	ns := newNamespace(t)
	startPolicyManager(t, &offsetClock{}, "")
	create(t, qwen3(ns))
	create(t, limitsPolicy(ns, "qwen3-limits", 40))
	waitChain(t, ns, "", 40)

	update(t, getPolicy(t, ns, "qwen3-limits"), func(p *v1alpha1.RateLimitPolicy) {
		p.Spec.Timezone = "Mars/Olympus_Mons"
		p.Spec.Limits.RequestsPerMinute = ptr.To[int32](7)
		p.Spec.Mode = v1alpha1.ModeShadow
		p.Spec.Key = v1alpha1.KeySpec{Source: v1alpha1.KeyHeader, Header: "X-User-Id"}
	})
	leaked := func() error {
		if c := gatewayConfig(t, ns); c != nil && c.RateLimit != nil {
			if rl := c.RateLimit; rl.Limits.RequestsPerMinute == 7 || rl.Mode == gatewayconfig.ModeShadow || rl.Key.Header != "" {
				return fmt.Errorf("the refused edit reached the gateway config: %+v", rl)
			}
		}
		if got := ingressRPM(t, ns); got == "7" {
			return fmt.Errorf("the refused edit reached the Ingress: limit-rpm %s", got)
		}
		return nil
	}
	eventually(t, "the policy refused and its limits gone from the gateway and the Ingress", func() error {
		if err := leaked(); err != nil {
			t.Fatal(err)
		}
		p := getPolicy(t, ns, "qwen3-limits")
		c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionAccepted)
		if p.Status.ObservedGeneration != p.Generation || c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonUnknownTimezone {
			return fmt.Errorf("policy status %+v", p.Status)
		}
		if p.Status.Effective != nil {
			return fmt.Errorf("a refused policy publishes %+v", p.Status.Effective)
		}
		if got := gatewayRPM(t, ns); got != -1 {
			return fmt.Errorf("gateway config rpm %d, want no limits", got)
		}
		if got := ingressRPM(t, ns); got != "" {
			return fmt.Errorf("ingress limit-rpm %q, want none", got)
		}
		// The service's status is written after its children, in the same reconcile.
		if s := getQS(t, ns, "qwen3").Status.RateLimit; s != "" {
			return fmt.Errorf("status.rateLimit = %q for a refused policy", s)
		}
		return nil
	})

	update(t, getPolicy(t, ns, "qwen3-limits"), func(p *v1alpha1.RateLimitPolicy) { p.Spec.Timezone = "UTC" })
	eventually(t, "the fixed edit in force", func() error {
		c := gatewayConfig(t, ns)
		if c == nil || c.RateLimit == nil || c.RateLimit.Limits.RequestsPerMinute != 7 || c.RateLimit.Mode != gatewayconfig.ModeShadow || c.RateLimit.Key.Header != "X-User-Id" {
			return fmt.Errorf("gateway config %+v", c)
		}
		return nil
	})
}

// TestIssue12FieldsReachTheGateway: the policy's queue, classes and daily budgets, and the
// plan's class levels, go through the API server (CEL, defaults), the policy's status and the
// QwenService controller into the gateway ConfigMap, where the gateway's own loader accepts them.
func TestIssue12FieldsReachTheGateway(t *testing.T) {
	ns := newNamespace(t)
	startPolicyManager(t, &offsetClock{}, "")
	create(t, qwen3(ns))
	p := limitsPolicy(ns, "qwen3-limits", 60)
	p.Spec.Algorithm = v1alpha1.AlgorithmLeakyBucket
	p.Spec.Queue = &v1alpha1.QueueSpec{MaxWait: metav1.Duration{Duration: 5 * time.Second}}
	p.Spec.Criticality = v1alpha1.CriticalitySheddable
	p.Spec.Limits.TokensPerDay = ptr.To[int64](2000000)
	p.Spec.Overrides = []v1alpha1.LimitOverride{{Name: "ops", Keys: []string{"10.0.0.0/8"}, Criticality: v1alpha1.CriticalityCritical,
		Limits: v1alpha1.LimitSet{RequestsPerHour: ptr.To[int32](500)}}}
	create(t, p)
	plan := fastPlan(ns, "http://127.0.0.1:1")
	plan.Spec.Classes.CriticalMaxLevel = ptr.To[int32](1)
	create(t, plan)
	eventually(t, "queue, classes and budgets in the gateway config", func() error {
		c := gatewayConfig(t, ns)
		if c == nil || c.RateLimit == nil {
			return fmt.Errorf("gateway config %+v", c)
		}
		rl := c.RateLimit
		if rl.Queue == nil || rl.Queue.MaxWait.Duration != 5*time.Second || rl.Queue.MaxQueued != 100 {
			return fmt.Errorf("queue %+v", rl.Queue)
		}
		if rl.Criticality != gatewayconfig.Sheddable || len(rl.Overrides) != 1 || rl.Overrides[0].Criticality != gatewayconfig.Critical {
			return fmt.Errorf("classes %q %+v", rl.Criticality, rl.Overrides)
		}
		if rl.Limits.TokensPerDay != 2000000 || rl.Overrides[0].Limits.RequestsPerHour != 500 || rl.Overrides[0].Limits.TokensPerDay != 2000000 {
			return fmt.Errorf("budgets %+v, %+v", rl.Limits, rl.Overrides[0].Limits)
		}
		if d := c.Degradation; d.CriticalMaxLevel == nil || *d.CriticalMaxLevel != 1 || d.SheddableStepsAhead == nil || *d.SheddableStepsAhead != 1 {
			return fmt.Errorf("degradation %+v", d)
		}
		return nil
	})
}
