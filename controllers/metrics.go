package controllers

import (
	"cmp"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// Operator metrics, served on the manager's metrics endpoint.
var (
	effectiveRPM = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qwen_operator_effective_requests_per_minute",
		Help: "Requests per minute in force for a RateLimitPolicy (after schedules and adaptive scaling); 0 means no request limit.",
	}, []string{"policy"})
	activeSchedule = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qwen_operator_active_schedule_info",
		Help: "1 for the schedule a RateLimitPolicy's limits follow now (schedule \"(base)\" when none is active); absent while the policy is not accepted.",
	}, []string{"policy", "schedule"})
	degradationLevel = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qwen_operator_degradation_level",
		Help: "Degradation level (0-4) a DegradationPlan decided.",
	}, []string{"plan"})
	telemetryQueryErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qwen_operator_telemetry_query_errors_total",
		Help: "Prometheus queries of policies and plans that failed, by reason.",
	}, []string{"reason"})
)

func init() {
	metrics.Registry.MustRegister(effectiveRPM, activeSchedule, degradationLevel, telemetryQueryErrors)
}

// baseSchedule is the schedule label while no schedule of a policy is active; schedule names
// are DNS labels, so it cannot be one.
const baseSchedule = "(base)"

// setPolicyMetrics publishes a policy's effective requests per minute and active schedule,
// or removes both series when eff is nil (not accepted, or deleted).
func setPolicyMetrics(policy string, eff *v1alpha1.EffectivePolicy, schedule string) {
	activeSchedule.DeletePartialMatch(prometheus.Labels{"policy": policy})
	if eff == nil {
		effectiveRPM.DeleteLabelValues(policy)
		return
	}
	effectiveRPM.WithLabelValues(policy).Set(float64(ptr.Deref(eff.Limits.RequestsPerMinute, 0)))
	activeSchedule.WithLabelValues(policy, cmp.Or(schedule, baseSchedule)).Set(1)
}
