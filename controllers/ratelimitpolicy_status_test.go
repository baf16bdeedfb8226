package controllers

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// samplePolicy is config/samples' policy: 30/min, 50/min weekdays 09-18, 200/min 22-06 in
// Asia/Shanghai, halved above 80 °C.
func samplePolicy() *v1alpha1.RateLimitPolicy {
	p := &v1alpha1.RateLimitPolicy{}
	p.Name, p.Namespace, p.Generation = "qwen3-limits", "ai", 3
	p.Spec = v1alpha1.RateLimitPolicySpec{
		TargetRef: v1alpha1.TargetRef{Name: "qwen3"},
		Limits:    v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](30), Burst: ptr.To[int32](10)},
		Timezone:  "Asia/Shanghai",
		Schedules: []v1alpha1.Schedule{
			{Name: "daytime", Days: []v1alpha1.Weekday{"Mon", "Tue", "Wed", "Thu", "Fri"}, Start: "09:00", End: "18:00", Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](50)}},
			{Name: "night", Start: "22:00", End: "06:00", Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](200)}},
		},
		Adaptive: []v1alpha1.AdaptiveRule{{Trigger: v1alpha1.Trigger{Signal: v1alpha1.SignalGPUTemperature, Above: "80"}, Scale: "0.5"}},
	}
	return p
}

func shanghai(t *testing.T, value string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := time.ParseInLocation("2006-01-02 15:04", value, loc)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func temps(v float64) readings {
	return readings{values: map[string]float64{"GPUTemperature": v}, total: 1}
}

func TestPolicyStatus(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mutate    func(*v1alpha1.RateLimitPolicy)
		older     string
		noTarget  bool
		read      readings
		prevScale v1alpha1.Decimal
		at        string // Asia/Shanghai wall time; 2026-11-26 is a Thursday
		// want
		accepted  bool
		reason    string
		schedule  string
		rpm       int32
		scale     v1alpha1.Decimal
		next      string
		requeueIn time.Duration
	}{
		{name: "daytime, cool GPU", read: temps(60), at: "2026-11-26 10:00", accepted: true, reason: ReasonAccepted,
			schedule: "daytime", rpm: 50, scale: "1", next: "2026-11-26 18:00", requeueIn: 8 * time.Hour},
		{name: "daytime, hot GPU halves", read: temps(85), at: "2026-11-26 10:00", accepted: true, reason: ReasonAccepted,
			schedule: "daytime", rpm: 25, scale: "0.5", next: "2026-11-26 18:00", requeueIn: 8 * time.Hour},
		{name: "evening gap uses base", read: temps(60), at: "2026-11-26 19:30", accepted: true, reason: ReasonAccepted,
			schedule: "", rpm: 30, scale: "1", next: "2026-11-26 22:00", requeueIn: 150 * time.Minute},
		{name: "night wraps midnight", read: temps(60), at: "2026-11-27 01:00", accepted: true, reason: ReasonAccepted,
			schedule: "night", rpm: 200, scale: "1", next: "2026-11-27 06:00", requeueIn: 5 * time.Hour},
		{name: "Saturday daytime is base", read: temps(60), at: "2026-11-28 10:00", accepted: true, reason: ReasonAccepted,
			schedule: "", rpm: 30, scale: "1", next: "2026-11-28 22:00", requeueIn: 12 * time.Hour},
		{name: "no data holds the previous scale", read: readings{noData: []string{"GPUTemperature"}, total: 1}, prevScale: "0.5",
			at: "2026-11-26 10:00", accepted: true, reason: ReasonAccepted, schedule: "daytime", rpm: 25, scale: "0.5", next: "2026-11-26 18:00", requeueIn: 8 * time.Hour},
		{name: "unknown timezone", mutate: func(p *v1alpha1.RateLimitPolicy) { p.Spec.Timezone = "Mars/Olympus" },
			at: "2026-11-26 10:00", reason: ReasonUnknownTimezone},
		{name: "missing target", noTarget: true, at: "2026-11-26 10:00", reason: ReasonTargetNotFound},
		{name: "newer policy conflicts", older: "first", at: "2026-11-26 10:00", reason: ReasonConflicted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := samplePolicy()
			if tc.mutate != nil {
				tc.mutate(p)
			}
			p.Status.AdaptiveScale = tc.prevScale
			now := shanghai(t, tc.at)
			st, requeue := policyStatus(policyInputs{policy: p, targetExists: !tc.noTarget, olderPolicy: tc.older, adaptive: tc.read, now: now})
			acc := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionAccepted)
			if acc == nil || (acc.Status == "True") != tc.accepted || acc.Reason != tc.reason {
				t.Fatalf("Accepted = %+v, want accepted=%v reason %s", acc, tc.accepted, tc.reason)
			}
			if st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration %d, want 3", st.ObservedGeneration)
			}
			if !tc.accepted {
				if st.Effective != nil || st.ActiveSchedule != "" || requeue != 0 {
					t.Errorf("a rejected policy must not publish limits (%v, schedule %q) or requeue (%v)", st.Effective, st.ActiveSchedule, requeue)
				}
				if enf := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionEnforced); enf == nil || enf.Status != "False" {
					t.Errorf("Enforced = %+v, want False", enf)
				}
				return
			}
			base := st.Effective.Limits
			if st.ActiveSchedule != tc.schedule || ptr.Deref(base.RequestsPerMinute, 0) != tc.rpm || st.AdaptiveScale != tc.scale {
				t.Errorf("got schedule %q rpm %d scale %s, want %q %d %s", st.ActiveSchedule, ptr.Deref(base.RequestsPerMinute, 0), st.AdaptiveScale, tc.schedule, tc.rpm, tc.scale)
			}
			if ptr.Deref(base.Burst, 0) != 10 {
				t.Errorf("burst %d, want the base 10", ptr.Deref(base.Burst, 0))
			}
			if want := shanghai(t, tc.next); st.NextTransitionTime == nil || !st.NextTransitionTime.Time.Equal(want) {
				t.Errorf("nextTransitionTime %v, want %v", st.NextTransitionTime, want)
			}
			if requeue != tc.requeueIn {
				t.Errorf("requeue after %v, want %v (exactly at the transition)", requeue, tc.requeueIn)
			}
		})
	}
}

// A rejected policy publishes nothing: its last effective policy goes, so the gateway
// enforces none of it rather than a mix of the old status and the refused edit.
func TestRejectedPolicyPublishesNoLimits(t *testing.T) {
	p := samplePolicy()
	good, _ := policyStatus(policyInputs{policy: p, targetExists: true, adaptive: temps(60), now: shanghai(t, "2026-11-26 10:00")})
	if good.Effective == nil {
		t.Fatal("an accepted policy without an effective policy")
	}
	p.Status = good
	p.Generation++
	p.Spec.Timezone = "Nowhere/Atlantis"
	bad, _ := policyStatus(policyInputs{policy: p, targetExists: true, adaptive: temps(60), now: shanghai(t, "2026-11-26 19:00")})
	if bad.Effective != nil || bad.ActiveSchedule != "" || bad.NextTransitionTime != nil || bad.ObservedGeneration != p.Generation {
		t.Fatalf("rejected policy status %+v", bad)
	}
	if c := meta.FindStatusCondition(bad.Conditions, v1alpha1.ConditionAccepted); c.Reason != ReasonUnknownTimezone || c.ObservedGeneration != p.Generation {
		t.Fatalf("Accepted %+v", c)
	}
}

// TestEffectivePolicyResolvesEveryTier: the status carries the settings as written and the
// complete limits of every tier — the schedule over the base, each override over that, all
// scaled — so that nothing downstream merges or scales.
func TestEffectivePolicyResolvesEveryTier(t *testing.T) {
	p := samplePolicy()
	p.Spec.Mode = v1alpha1.ModeShadow
	p.Spec.Key = v1alpha1.KeySpec{Source: v1alpha1.KeyAPIKey}
	p.Spec.Algorithm = v1alpha1.AlgorithmSlidingWindow
	p.Spec.FailureMode = v1alpha1.FailClosed
	p.Spec.Limits.TokensPerMinute = ptr.To[int64](60000)
	p.Spec.Overrides = []v1alpha1.LimitOverride{
		{Name: "premium", Keys: []string{"team-a", "team-b"}, Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](600), Burst: ptr.To[int32](100)}},
		{Name: "batch", Keys: []string{"etl"}, Limits: v1alpha1.LimitSet{MaxConcurrentRequests: ptr.To[int32](2)}},
	}
	// Daytime (50/min over the base 30/min) on a hot GPU (scale 0.5).
	st, _ := policyStatus(policyInputs{policy: p, targetExists: true, adaptive: temps(85), now: shanghai(t, "2026-11-26 10:00")})
	set := func(rpm, burst int32, tokens int64, conc int32) v1alpha1.LimitSet {
		l := v1alpha1.LimitSet{RequestsPerMinute: ptr.To(rpm), Burst: ptr.To(burst), TokensPerMinute: ptr.To(tokens)}
		if conc > 0 {
			l.MaxConcurrentRequests = ptr.To(conc)
		}
		return l
	}
	want := &v1alpha1.EffectivePolicy{
		Mode: v1alpha1.ModeShadow, Key: v1alpha1.KeySpec{Source: v1alpha1.KeyAPIKey},
		Algorithm: v1alpha1.AlgorithmSlidingWindow, FailureMode: v1alpha1.FailClosed,
		Limits: set(25, 10, 30000, 0),
		Overrides: []v1alpha1.EffectiveOverride{
			{Name: "premium", Keys: []string{"team-a", "team-b"}, Limits: set(300, 100, 30000, 0)},
			{Name: "batch", Keys: []string{"etl"}, Limits: set(25, 10, 30000, 1)},
		},
	}
	if !equality.Semantic.DeepEqual(st.Effective, want) {
		t.Errorf("effective\n got %s\nwant %s", asJSON(st.Effective), asJSON(want))
	}
}

// asJSON shows a status (or part of one) in a failure message.
func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestAdaptiveScaleSmallestMatchingWins(t *testing.T) {
	rules := []v1alpha1.AdaptiveRule{
		{Trigger: v1alpha1.Trigger{Signal: v1alpha1.SignalGPUTemperature, Above: "80"}, Scale: "0.5"},
		{Trigger: v1alpha1.Trigger{Signal: v1alpha1.SignalQueueDepth, Above: "10"}, Scale: "0.25"},
		{Trigger: v1alpha1.Trigger{Signal: v1alpha1.SignalGPUUtilization, Above: "0"}, Scale: "2"},
	}
	r := readings{values: map[string]float64{"GPUTemperature": 85, "QueueDepth": 20, "GPUUtilization": 50}}
	if s, held := adaptiveScale(rules, r, ""); s != "0.25" || held {
		t.Fatalf("scale %s held=%v, want 0.25", s, held)
	}
	r.values["QueueDepth"] = 5
	if s, _ := adaptiveScale(rules, r, ""); s != "0.5" {
		t.Fatalf("scale %s, want 0.5", s)
	}
	// A scale above 1 loosens the limits when it is the only rule that holds.
	r.values["GPUTemperature"] = 70
	if s, _ := adaptiveScale(rules, r, ""); s != "2" {
		t.Fatalf("scale %s, want 2", s)
	}
	r.values["GPUUtilization"] = 0
	if s, _ := adaptiveScale(rules, r, ""); s != "1" {
		t.Fatalf("no rule holds: scale %s, want 1", s)
	}
	r.err = errors.New("x")
	delete(r.values, "QueueDepth")
	if s, held := adaptiveScale(rules, r, "0.5"); s != "0.5" || !held {
		t.Fatalf("missing value: scale %s held=%v, want the previous 0.5 held", s, held)
	}
}

// TestRenderGoldenPolicyStatus keeps internal/render's golden inputs honest: their policy
// status is what this controller publishes for their spec at the instant the first names.
func TestRenderGoldenPolicyStatus(t *testing.T) {
	for _, name := range []string{"policy-overrides-schedules.in.yaml", "policy-leaky-queue.in.yaml"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "internal", "render", "testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			var in struct {
				Policy *v1alpha1.RateLimitPolicy `json:"policy"`
			}
			if err := yaml.Unmarshal(b, &in); err != nil || in.Policy == nil {
				t.Fatalf("reading the golden input: %v", err)
			}
			want := in.Policy.Status
			p := in.Policy.DeepCopy()
			p.Status = v1alpha1.RateLimitPolicyStatus{}
			got, _ := policyStatus(policyInputs{policy: p, targetExists: true, adaptive: temps(85), now: shanghai(t, "2026-11-26 10:00")})
			if !equality.Semantic.DeepEqual(got.Effective, want.Effective) || got.ActiveSchedule != want.ActiveSchedule ||
				got.AdaptiveScale != want.AdaptiveScale || !got.NextTransitionTime.Equal(want.NextTransitionTime) || got.ObservedGeneration != want.ObservedGeneration {
				t.Errorf("the controller publishes\n%s\nthe golden input says\n%s", asJSON(got), asJSON(want))
			}
		})
	}
}

// TestSlidingLogCappedWhenScaledUp: an adaptive scale above 1 may raise requestsPerMinute past
// what a SlidingLog holds (10000, one entry per admission); the effective limits of every tier
// stop there, so the gateway never refuses the rendered config.
func TestSlidingLogCappedWhenScaledUp(t *testing.T) {
	spec := v1alpha1.RateLimitPolicySpec{
		Algorithm: v1alpha1.AlgorithmSlidingLog,
		Limits:    v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](8000)},
		Overrides: []v1alpha1.LimitOverride{{Name: "t", Keys: []string{"k"}, Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](9000)}}},
	}
	e, err := effectivePolicy(spec, spec.Limits, "2")
	if err != nil {
		t.Fatal(err)
	}
	if got := *e.Limits.RequestsPerMinute; got != 10000 {
		t.Errorf("base requestsPerMinute %d, want 10000", got)
	}
	if got := *e.Overrides[0].Limits.RequestsPerMinute; got != 10000 {
		t.Errorf("override requestsPerMinute %d, want 10000", got)
	}
	spec.Algorithm = v1alpha1.AlgorithmSlidingWindow
	if e, _ := effectivePolicy(spec, spec.Limits, "2"); *e.Limits.RequestsPerMinute != 16000 {
		t.Errorf("SlidingWindow capped too: %d", *e.Limits.RequestsPerMinute)
	}
}

// TestEffectiveCriticality: the policy's class and header reach status.effective, and each tier
// carries its class, the policy's where it sets none.
func TestEffectiveCriticality(t *testing.T) {
	spec := v1alpha1.RateLimitPolicySpec{
		Criticality: v1alpha1.CriticalitySheddable, CriticalityHeader: "X-Qwen-Criticality",
		Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](10)},
		Overrides: []v1alpha1.LimitOverride{
			{Name: "ops", Keys: []string{"ops"}, Criticality: v1alpha1.CriticalityCritical, Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](10)}},
			{Name: "other", Keys: []string{"o"}, Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](10)}},
		},
	}
	e, err := effectivePolicy(spec, spec.Limits, "1")
	if err != nil {
		t.Fatal(err)
	}
	got := []v1alpha1.Criticality{e.Criticality, e.Overrides[0].Criticality, e.Overrides[1].Criticality}
	if fmt.Sprint(got) != "[Sheddable Critical Sheddable]" || e.CriticalityHeader != "X-Qwen-Criticality" {
		t.Errorf("classes %v, header %q", got, e.CriticalityHeader)
	}
}
