package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Operator metrics, served on the manager's metrics endpoint.
var (
	effectiveRPM = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "qwen_operator_effective_requests_per_minute",
		Help: "Requests per minute in force for a RateLimitPolicy (after schedules and adaptive scaling); 0 means no request limit.",
	}, []string{"policy"})
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
	metrics.Registry.MustRegister(effectiveRPM, degradationLevel, telemetryQueryErrors)
}
