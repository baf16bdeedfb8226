package degrade

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

// After a restart a hot GPU must keep its level even when the level has a `for` period that
// restarted with the operator; it steps down only once the value clears.
func TestRestoreHoldsTheLevelUntilValuesClear(t *testing.T) {
	spec := v1alpha1.DegradationPlanSpec{
		Levels: []v1alpha1.DegradationLevel{{
			Level: 2, For: &metav1.Duration{Duration: time.Minute},
			When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalGPUTemperature, Above: "83"}},
		}},
		Cooldown:       metav1.Duration{Duration: 2 * time.Minute},
		RecoveryMargin: 10,
	}
	p, err := NewPlan(spec)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	st := p.Restore(2, t0)
	now := t0.Add(10 * time.Minute) // long past the cooldown

	st, d := p.Evaluate(st, map[string]float64{"GPUTemperature": 86}, now)
	if d.Level != 2 || d.Changed {
		t.Fatalf("still hot after restart: level %d changed=%v, want 2 held", d.Level, d.Changed)
	}
	st, d = p.Evaluate(st, map[string]float64{"GPUTemperature": 80}, now.Add(time.Second))
	if d.Level != 2 {
		t.Fatalf("80 °C is inside the recovery margin (clears at 74.7): level %d, want 2", d.Level)
	}
	_, d = p.Evaluate(st, map[string]float64{"GPUTemperature": 70}, now.Add(2*time.Second))
	if d.Level != 0 || !d.Changed {
		t.Fatalf("cleared: level %d changed=%v, want 0", d.Level, d.Changed)
	}

	// Without Restore, the empty state would have dropped the level at once.
	_, d = p.Evaluate(State{Level: 2, Since: t0}, map[string]float64{"GPUTemperature": 86}, now)
	if d.Level != 0 {
		t.Fatalf("precondition: an empty state steps down (level %d); Restore exists for this", d.Level)
	}
}
