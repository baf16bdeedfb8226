package render

import (
	"testing"

	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// A hot GPU halves the override tiers too, in the gateway config and at the edge.
func TestAdaptiveScaleAppliesToOverrides(t *testing.T) {
	p := &v1alpha1.RateLimitPolicy{}
	p.Name = "limits"
	p.Spec.Key.Source = v1alpha1.KeyAPIKey
	p.Spec.Limits = v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](30)}
	p.Spec.Overrides = []v1alpha1.LimitOverride{{Name: "premium", Keys: []string{"team-a"}, Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](600)}}}
	p.Status.EffectiveLimits = &v1alpha1.LimitSet{RequestsPerMinute: ptr.To[int32](15)}

	for scale, want := range map[v1alpha1.Decimal]int32{"": 600, "1": 600, "0.5": 300} {
		p.Status.AdaptiveScale = scale
		if got := ptr.Deref(OverrideLimits(p, p.Spec.Overrides[0]).RequestsPerMinute, 0); got != want {
			t.Errorf("scale %q: premium %d/min, want %d", scale, got, want)
		}
		rl := rateLimitConfig(p, v1alpha1.GatewaySpec{})
		if got := rl.Overrides[0].Limits.RequestsPerMinute; got != int64(want) {
			t.Errorf("scale %q: gateway config premium %d/min, want %d", scale, got, want)
		}
		// APIKey policies put the largest per-key rate at the edge.
		if got := Edge(p).RequestsPerMinute; got != int64(want) {
			t.Errorf("scale %q: edge %d/min, want %d", scale, got, want)
		}
	}
}
