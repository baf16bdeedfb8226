package render

import (
	"fmt"
	"strings"

	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// RateLimitSummary is the one-line status summary of the base limits in force, e.g.
// "50/min burst 10, 60000 tokens/min, 8 concurrent (schedule: daytime)"; empty when no policy
// is enforced (see Enforced). Shadow mode is marked "[shadow]".
func RateLimitSummary(p *v1alpha1.RateLimitPolicy) string {
	e := Enforced(p)
	if e == nil {
		return ""
	}
	l := e.Limits
	var parts []string
	if rpm := ptr.Deref(l.RequestsPerMinute, 0); rpm > 0 {
		s := fmt.Sprintf("%d/min", rpm)
		if b := ptr.Deref(l.Burst, 0); b > 0 {
			s += fmt.Sprintf(" burst %d", b)
		}
		parts = append(parts, s)
	} else if b := ptr.Deref(l.Burst, 0); b > 0 {
		parts = append(parts, fmt.Sprintf("burst %d", b))
	}
	if n := ptr.Deref(l.TokensPerMinute, 0); n > 0 {
		parts = append(parts, fmt.Sprintf("%d tokens/min", n))
	}
	if n := ptr.Deref(l.InputTokensPerMinute, 0); n > 0 {
		parts = append(parts, fmt.Sprintf("%d input tokens/min", n))
	}
	if n := ptr.Deref(l.OutputTokensPerMinute, 0); n > 0 {
		parts = append(parts, fmt.Sprintf("%d output tokens/min", n))
	}
	if n := ptr.Deref(l.MaxConcurrentRequests, 0); n > 0 {
		parts = append(parts, fmt.Sprintf("%d concurrent", n))
	}
	s := strings.Join(parts, ", ")
	if e.Mode == v1alpha1.ModeShadow {
		s += " [shadow]"
	}
	if p.Status.ActiveSchedule != "" {
		s += fmt.Sprintf(" (schedule: %s)", p.Status.ActiveSchedule)
	}
	return strings.TrimSpace(s)
}
