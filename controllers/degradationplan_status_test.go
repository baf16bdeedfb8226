package controllers

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/degrade"
	"github.com/qwenops/qwen-operator/internal/telemetry"
)

// temperaturePlan steps to L2 above 83 °C and to L4 above 90 °C, with a 2m cooldown.
func temperaturePlan() *v1alpha1.DegradationPlan {
	p := &v1alpha1.DegradationPlan{}
	p.Name, p.Namespace, p.Generation = "qwen3-degrade", "ai", 1
	p.Spec = v1alpha1.DegradationPlanSpec{
		TargetRef: v1alpha1.TargetRef{Name: "qwen3"},
		Levels: []v1alpha1.DegradationLevel{
			{Level: 2, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalGPUTemperature, Above: "83"}}},
			{Level: 4, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalGPUTemperature, Above: "90"}}},
		},
		Cooldown:       metav1.Duration{Duration: 2 * time.Minute},
		RecoveryMargin: 10,
	}
	return p
}

// step is one evaluation: the reading at an offset from t0 and the level expected after it.
type step struct {
	at    time.Duration
	read  readings
	level int32
	// telemetry is the expected TelemetryAvailable status.
	telemetry metav1.ConditionStatus
}

func TestPlanStatusOverTime(t *testing.T) {
	unavailable := readings{err: fmt.Errorf("GPUTemperature: %w", telemetry.ErrUnavailable), failed: 1, total: 1}
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	p := temperaturePlan()
	plan, err := degrade.NewPlan(p.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var state degrade.State
	for i, s := range []step{
		{0, temps(70), 0, "True"},
		{15 * time.Second, temps(86), 2, "True"},
		{30 * time.Second, temps(92), 4, "True"},
		{45 * time.Second, unavailable, 4, "False"},            // Prometheus down: held
		{3 * time.Minute, unavailable, 4, "False"},             // still held past the cooldown
		{3*time.Minute + 15*time.Second, temps(80), 2, "True"}, // below 90×0.9 but above 83×0.9: L2 (cooldown passed)
		{3*time.Minute + 30*time.Second, temps(70), 2, "True"}, // cooldown at L2 not over
		{5*time.Minute + 30*time.Second, temps(70), 0, "True"},
	} {
		now := t0.Add(s.at)
		st, next := planStatus(planInputs{plan: p, compiled: plan, targetExists: true, read: s.read, state: state, now: now})
		if st.Level != s.level {
			t.Fatalf("step %d (+%v): level %d, want %d (reasons %v)", i, s.at, st.Level, s.level, st.Reasons)
		}
		if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionTelemetryAvailable); c == nil || c.Status != s.telemetry {
			t.Fatalf("step %d: TelemetryAvailable %+v, want %s", i, c, s.telemetry)
		}
		deg := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDegraded)
		if (deg.Status == "True") != (s.level > 0) {
			t.Fatalf("step %d: Degraded %s at level %d", i, deg.Status, s.level)
		}
		p.Status, state = st, next
	}
	var levels []int32
	for _, h := range p.Status.History {
		levels = append(levels, h.Level)
	}
	if fmt.Sprint(levels) != "[2 4 2 0]" {
		t.Fatalf("history %v, want [2 4 2 0]", levels)
	}
	if p.Status.Signals["GPUTemperature"] != "70.0" {
		t.Fatalf("signals %v", p.Status.Signals)
	}
}

func TestPlanHistoryKeepsTheLastTen(t *testing.T) {
	p := temperaturePlan()
	p.Spec.Cooldown = metav1.Duration{}
	plan, _ := degrade.NewPlan(p.Spec)
	var state degrade.State
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i := range 30 {
		v := 70.0
		if i%2 == 1 {
			v = 95
		}
		st, next := planStatus(planInputs{plan: p, compiled: plan, targetExists: true, read: temps(v), state: state, now: t0.Add(time.Duration(i) * time.Second)})
		p.Status, state = st, next
	}
	if n := len(p.Status.History); n != historyLimit {
		t.Fatalf("history has %d entries, want %d", n, historyLimit)
	}
	if last := p.Status.History[historyLimit-1]; !last.Time.Time.Equal(t0.Add(29 * time.Second)) {
		t.Fatalf("newest entry at %v, want the last transition", last.Time)
	}
}

func TestPlanRejections(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		in     func(p *v1alpha1.DegradationPlan, plan *degrade.Plan) planInputs
		reason string
	}{
		{"target missing", func(p *v1alpha1.DegradationPlan, plan *degrade.Plan) planInputs {
			return planInputs{plan: p, compiled: plan, read: temps(95)}
		}, ReasonTargetNotFound},
		{"conflict", func(p *v1alpha1.DegradationPlan, plan *degrade.Plan) planInputs {
			return planInputs{plan: p, compiled: plan, targetExists: true, olderPlan: "first", read: temps(95)}
		}, ReasonConflicted},
		{"invalid plan", func(p *v1alpha1.DegradationPlan, _ *degrade.Plan) planInputs {
			return planInputs{plan: p, compileErr: errors.New("bad"), targetExists: true}
		}, ReasonInvalidPlan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := temperaturePlan()
			p.Status.Level = 2
			plan, _ := degrade.NewPlan(p.Spec)
			in := tc.in(p, plan)
			in.now = now
			st, _ := planStatus(in)
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionAccepted)
			if c.Status != "False" || c.Reason != tc.reason {
				t.Fatalf("Accepted %+v, want False/%s", c, tc.reason)
			}
			if st.Level != 2 {
				t.Fatalf("a rejected plan changed the level to %d", st.Level)
			}
		})
	}
}

// A query Prometheus rejects is reported, and the other triggers still count.
func TestPlanBadQuery(t *testing.T) {
	p := temperaturePlan()
	plan, _ := degrade.NewPlan(p.Spec)
	read := temps(95)
	read.err = fmt.Errorf("PromQL(x): %w: parse error", telemetry.ErrBadQuery)
	read.failed, read.total = 1, 2
	st, _ := planStatus(planInputs{plan: p, compiled: plan, targetExists: true, read: read, now: time.Now()})
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionAccepted); c.Reason != telemetry.ReasonInvalidQuery {
		t.Fatalf("Accepted %+v, want InvalidQuery", c)
	}
	if st.Level != 4 {
		t.Fatalf("level %d, want 4 from the trigger that could be read", st.Level)
	}
}
