package degrade

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

// samplePlan is config/samples' and API.md's plan: L1 latency, L2 GPU temperature for 1m,
// L3 queue or memory, L4 very hot or failing; cooldown 2m, recovery margin 10%.
func samplePlan() v1alpha1.DegradationPlanSpec {
	return v1alpha1.DegradationPlanSpec{
		TargetRef: v1alpha1.TargetRef{Name: "qwen3"},
		Levels: []v1alpha1.DegradationLevel{
			{Level: 1, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalP95LatencySeconds, Above: "5"}}},
			{Level: 2, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalGPUTemperature, Above: "83"}}, For: dur(time.Minute)},
			{Level: 3, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalQueueDepth, Above: "50"}, {Signal: v1alpha1.SignalGPUMemoryUsed, Above: "0.95"}}},
			{Level: 4, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalGPUTemperature, Above: "90"}, {Signal: v1alpha1.SignalErrorRate, Above: "0.5"}}},
		},
		Cooldown:       metav1.Duration{Duration: 2 * time.Minute},
		RecoveryMargin: 10,
	}
}

// tstep is one evaluation: at t0+at with these values, expect this level (and, when set, a
// first reason).
type tstep struct {
	at     time.Duration
	values map[string]float64
	level  int32
	reason string // expected Reasons[0]; "" = not checked, "-" = no reasons
}

func temp(v float64) map[string]float64 { return map[string]float64{"GPUTemperature": v} }

func run(t *testing.T, spec v1alpha1.DegradationPlanSpec, steps []tstep) State {
	t.Helper()
	p, err := NewPlan(spec)
	if err != nil {
		t.Fatal(err)
	}
	var s State
	for i, st := range steps {
		prevLevel := s.Level
		var d Decision
		s, d = p.Evaluate(s, st.values, t0.Add(st.at))
		if d.Level != st.level || s.Level != st.level {
			t.Fatalf("step %d (t0+%v, %v): level %d (state %d), want %d; reasons %q", i, st.at, st.values, d.Level, s.Level, st.level, d.Reasons)
		}
		if d.Changed != (prevLevel != st.level) {
			t.Errorf("step %d: Changed = %v with %d -> %d", i, d.Changed, prevLevel, st.level)
		}
		switch {
		case st.reason == "-" && len(d.Reasons) != 0:
			t.Errorf("step %d: reasons %q, want none", i, d.Reasons)
		case st.reason != "" && st.reason != "-" && (len(d.Reasons) == 0 || d.Reasons[0] != st.reason):
			t.Errorf("step %d: reasons %q, want first %q", i, d.Reasons, st.reason)
		}
	}
	return s
}

func TestEvaluateSequences(t *testing.T) {
	m := time.Minute
	s := time.Second
	for _, tc := range []struct {
		name  string
		spec  func(*v1alpha1.DegradationPlanSpec)
		steps []tstep
	}{
		{name: "for: a trigger must hold continuously for its level's for", steps: []tstep{
			{0, temp(80), 0, "-"},
			{15 * s, temp(86), 0, "-"},
			{45 * s, temp(86), 0, "-"},
			{60 * s, temp(82), 0, "-"}, // dipped: the minute restarts
			{75 * s, temp(86), 0, "-"},
			{2*m + 14*s, temp(86), 0, "-"},
			{2*m + 15*s, temp(86), 2, "GPUTemperature=86.0 > 83 for 1m (L2)"},
		}},
		{name: "stepping up is immediate and goes to the highest active level", steps: []tstep{
			{0, map[string]float64{"P95LatencySeconds": 6}, 1, "P95LatencySeconds=6.0 > 5 (L1)"},
			{15 * s, map[string]float64{"P95LatencySeconds": 6, "QueueDepth": 51}, 3, "QueueDepth=51.0 > 50 (L3)"},
			{20 * s, map[string]float64{"P95LatencySeconds": 6, "QueueDepth": 51, "ErrorRate": 0.6, "GPUTemperature": 91}, 4, "GPUTemperature=91.0 > 90 (L4)"},
		}},
		{name: "step down waits for the cooldown", steps: []tstep{
			{0, temp(86), 0, ""},
			{m, temp(86), 2, ""},
			{m + 15*s, temp(70), 2, "cooling down: L2 until 2026-11-26T10:03:00Z, then L0"},
			{2*m + 59*s, temp(70), 2, ""},
			{3 * m, temp(70), 0, "-"},
		}},
		{name: "step down waits for the value to fall by the recovery margin", steps: []tstep{
			{0, temp(86), 0, ""},
			{m, temp(86), 2, ""},
			{5 * m, temp(80), 2, "GPUTemperature=80.0, clears at 74.7 (L2)"}, // below 83, above 74.7
			{6 * m, temp(74.8), 2, ""},
			{7 * m, temp(74.7), 0, "-"}, // at the recovery threshold counts as cleared
		}},
		{name: "hovering around a threshold does not flap", steps: []tstep{
			{0, map[string]float64{"P95LatencySeconds": 5.1}, 1, ""},
			{15 * s, map[string]float64{"P95LatencySeconds": 4.9}, 1, ""},
			{3 * m, map[string]float64{"P95LatencySeconds": 5.2}, 1, ""},
			{6 * m, map[string]float64{"P95LatencySeconds": 4.6}, 1, ""},
			{6*m + 15*s, map[string]float64{"P95LatencySeconds": 4.5}, 0, ""},
		}},
		{name: "stepping down lands on the highest level still held", steps: []tstep{
			{0, temp(95), 4, "GPUTemperature=95.0 > 90 (L4)"},
			{m, temp(88), 4, "GPUTemperature=88.0, clears at 81.0 (L4)"}, // L2's minute is complete now too
			{2 * m, temp(85), 4, ""},
			{3 * m, temp(81), 2, "GPUTemperature=81.0, clears at 74.7 (L2)"},
			{4 * m, temp(70), 2, "cooling down: L2 until 2026-11-26T10:05:00Z, then L0"},
			{5 * m, temp(70), 0, "-"},
		}},
		{name: "stepping up again during a cooldown is immediate and restarts it", steps: []tstep{
			{0, map[string]float64{"QueueDepth": 60}, 3, ""},
			{30 * s, map[string]float64{"QueueDepth": 10}, 3, ""},
			{60 * s, map[string]float64{"QueueDepth": 10, "ErrorRate": 0.9}, 4, ""},
			{2*m + 30*s, map[string]float64{"QueueDepth": 10, "ErrorRate": 0.1}, 4, ""},
			{3 * m, map[string]float64{"QueueDepth": 10, "ErrorRate": 0.1}, 0, ""},
		}},
		{name: "missing data neither escalates nor de-escalates", steps: []tstep{
			{0, temp(95), 4, ""},
			{5 * m, nil, 4, "GPUTemperature: no data, holding (L4)"},
			{6 * m, map[string]float64{"QueueDepth": 3}, 4, ""},
			{7 * m, temp(60), 0, "-"},
			{8 * m, map[string]float64{"GPUTemperature": nanValue()}, 0, "-"}, // NaN is no data
		}},
		{name: "a gap neither completes nor restarts a for period", steps: []tstep{
			{0, temp(86), 0, ""},
			{30 * s, nil, 0, ""},
			{60 * s, nil, 0, ""}, // the minute is over, but there is no value to trip on
			{70 * s, temp(86), 2, ""},
		}},
		{name: "no data from the start stays at 0", steps: []tstep{
			{0, nil, 0, "-"},
			{time.Hour, nil, 0, "-"},
		}},
		{name: "override wins and its removal applies at once",
			spec: func(s *v1alpha1.DegradationPlanSpec) {
				s.Override = &v1alpha1.LevelOverride{Level: 3, Reason: "drill"}
			},
			steps: []tstep{
				{0, temp(60), 3, "override: drill (L3)"},
				{m, temp(99), 3, "override: drill (L3)"},
			}},
		{name: "override to 0 suppresses", spec: func(s *v1alpha1.DegradationPlanSpec) {
			s.Override = &v1alpha1.LevelOverride{Level: 0}
		}, steps: []tstep{
			{0, temp(99), 0, "manual override (L0)"},
		}},
		{name: "zero margin clears at the threshold, zero cooldown steps at once", spec: func(s *v1alpha1.DegradationPlanSpec) {
			s.RecoveryMargin = 0
			s.Cooldown = metav1.Duration{}
		}, steps: []tstep{
			{0, map[string]float64{"ErrorRate": 0.51}, 4, "ErrorRate=0.51 > 0.5 (L4)"},
			{s, map[string]float64{"ErrorRate": 0.5}, 0, "-"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := samplePlan()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			run(t, spec, tc.steps)
		})
	}
}

func nanValue() float64 { var z float64; return z / z }

// An override's removal is a new plan evaluated with the old state.
func TestOverrideRemovedSkipsCooldown(t *testing.T) {
	spec := samplePlan()
	spec.Override = &v1alpha1.LevelOverride{Level: 4, Reason: "drill"}
	pinned, _ := NewPlan(spec)
	s, d := pinned.Evaluate(State{}, temp(86), t0)
	if d.Level != 4 || !s.Overridden {
		t.Fatalf("pinned: %+v %+v", s, d)
	}
	spec.Override = nil
	free, _ := NewPlan(spec)
	s, d = free.Evaluate(s, temp(86), t0.Add(10*time.Second))
	if d.Level != 0 || !d.Changed || s.Overridden {
		t.Fatalf("after removal: level %d changed %v overridden %v, want 0 at once", d.Level, d.Changed, s.Overridden)
	}
	// The for period of L2 ran under the override and completes on schedule.
	_, d = free.Evaluate(s, temp(86), t0.Add(time.Minute))
	if d.Level != 2 {
		t.Fatalf("L2 after its minute: got %d", d.Level)
	}
}

func TestEvaluateDoesNotModifyPrev(t *testing.T) {
	p, _ := NewPlan(samplePlan())
	s1, _ := p.Evaluate(State{}, temp(86), t0)
	snapshot := s1.Triggers["L2/GPUTemperature>83"]
	_, _ = p.Evaluate(s1, temp(60), t0.Add(time.Minute))
	if s1.Triggers["L2/GPUTemperature>83"] != snapshot || s1.Level != 0 {
		t.Fatalf("prev state changed")
	}
	if got := s1.Since; !got.Equal(t0) {
		t.Fatalf("Since at the first evaluation = %v, want t0", got)
	}
}

// A trigger removed from the spec drops out of the state; a level removed while in force
// steps down after the cooldown.
func TestSpecEdits(t *testing.T) {
	spec := samplePlan()
	p, _ := NewPlan(spec)
	s, _ := p.Evaluate(State{}, map[string]float64{"QueueDepth": 60}, t0)
	if s.Level != 3 {
		t.Fatalf("level %d", s.Level)
	}
	spec.Levels = spec.Levels[:2]
	p2, _ := NewPlan(spec)
	s2, d := p2.Evaluate(s, map[string]float64{"QueueDepth": 60}, t0.Add(time.Minute))
	if d.Level != 3 || len(s2.Triggers) != 0 {
		t.Fatalf("within cooldown: level %d triggers %v", d.Level, s2.Triggers)
	}
	_, d = p2.Evaluate(s2, nil, t0.Add(2*time.Minute))
	if d.Level != 0 {
		t.Fatalf("after cooldown: level %d", d.Level)
	}
}

func TestPromQLTriggers(t *testing.T) {
	spec := samplePlan()
	q := `sum(rate(http_requests_total{namespace="$namespace"}[1m]))`
	spec.Levels = []v1alpha1.DegradationLevel{{Level: 3, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalPromQL, Query: q, Above: "100"}}}}
	key := spec.Levels[0].When[0].Key()
	if key != "PromQL("+q+")" {
		t.Fatalf("Key = %q", key)
	}
	run(t, spec, []tstep{
		{0, map[string]float64{key: 150}, 3, key + "=150.0 > 100 (L3)"},
		{0, map[string]float64{"PromQL": 1}, 3, ""},
	})
}

func TestInputs(t *testing.T) {
	p, err := NewPlan(samplePlan())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, in := range p.Inputs() {
		keys = append(keys, in.Key())
	}
	want := []string{"P95LatencySeconds", "GPUTemperature", "QueueDepth", "GPUMemoryUsed", "ErrorRate"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("Inputs = %v, want %v", keys, want)
	}
}

func TestNewPlanInvalid(t *testing.T) {
	for name, edit := range map[string]func(*v1alpha1.DegradationPlanSpec){
		"duplicate level": func(s *v1alpha1.DegradationPlanSpec) { s.Levels[1].Level = 1 },
		"level 5":         func(s *v1alpha1.DegradationPlanSpec) { s.Levels[0].Level = 5 },
		"bad threshold":   func(s *v1alpha1.DegradationPlanSpec) { s.Levels[0].When[0].Above = "five" },
		"PromQL without query": func(s *v1alpha1.DegradationPlanSpec) {
			s.Levels[0].When[0].Signal = v1alpha1.SignalPromQL
		},
		"query on a preset": func(s *v1alpha1.DegradationPlanSpec) { s.Levels[0].When[0].Query = "up" },
		"no triggers":       func(s *v1alpha1.DegradationPlanSpec) { s.Levels[0].When = nil },
		"margin 150":        func(s *v1alpha1.DegradationPlanSpec) { s.RecoveryMargin = 150 },
		"override 7":        func(s *v1alpha1.DegradationPlanSpec) { s.Override = &v1alpha1.LevelOverride{Level: 7} },
	} {
		spec := samplePlan()
		edit(&spec)
		if _, err := NewPlan(spec); !errors.Is(err, ErrInvalidPlan) {
			t.Errorf("%s: err = %v, want ErrInvalidPlan", name, err)
		} else if !strings.Contains(err.Error(), "level") && !strings.Contains(err.Error(), "recoveryMargin") {
			t.Errorf("%s: unhelpful message %q", name, err)
		}
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{
		86: "86.0", 86.04: "86.04", 0.953125: "0.953", 5.12345: "5.123", 0: "0.0", 0.000412: "0.000412",
		83 * 0.9: "74.7", 200: "200.0", 1e-9: "1e-09",
	} {
		if got := FormatValue(v); got != want {
			t.Errorf("FormatValue(%v) = %q, want %q", v, got, want)
		}
	}
	if FormatValue(nanValue()) != "NaN" || FormatValue(1/zero()) != "+Inf" {
		t.Errorf("NaN/Inf formatting")
	}
}

func zero() float64 { return 0 }
