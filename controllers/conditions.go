package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// The reasons of the conditions this package sets, for all three kinds. Two other packages
// name reasons in one place each: render.Reason* (a spec that cannot be rendered, the reason
// of Ready=False) and telemetry.Reason (a telemetry outcome).
const (
	// QwenService: Ready, EngineAvailable, GatewayAvailable, FallbackAvailable, Degraded.
	ReasonAvailable          = "Available"
	ReasonEngineUnavailable  = "EngineUnavailable"
	ReasonGatewayUnavailable = "GatewayUnavailable"
	ReasonApplyFailed        = "ApplyFailed"
	ReasonPending            = "Pending"
	ReasonNotConfigured      = "NotConfigured"
	ReasonNoPlan             = "NoPlan"
	ReasonNormal             = "Normal"
	// ReasonNoReadyReplicas: the Deployment counts as available (its maxUnavailable allows
	// zero ready pods, as a one-replica GPU engine's does) but no pod is ready to serve.
	ReasonNoReadyReplicas = "NoReadyReplicas"
	// ReasonNoReadyEndpoints: the fallback's Service has no ready endpoint, so the gateway
	// config marks the fallback unavailable.
	ReasonNoReadyEndpoints = "NoReadyEndpoints"
	// ReasonConflict: an object the service renders exists and is not the service's; it is
	// left alone.
	ReasonConflict = "Conflict"
	// ClientsIdentified: how the gateway tells clients apart, or (ReasonProxyAddressOnly) why
	// it cannot.
	ReasonNoRateLimit      = "NoRateLimit"
	ReasonKeyedByAPIKey    = "KeyedByAPIKey"
	ReasonKeyedByHeader    = "KeyedByHeader"
	ReasonPeerAddress      = "PeerAddress"
	ReasonForwardedFor     = "ForwardedFor"
	ReasonProxyAddressOnly = "ProxyAddressOnly"

	// RateLimitPolicy and DegradationPlan: Accepted, Enforced, Degraded.
	ReasonAccepted        = "Accepted"
	ReasonConflicted      = "Conflicted"
	ReasonTargetNotFound  = "TargetNotFound"
	ReasonUnknownTimezone = "UnknownTimezone"
	ReasonInvalidSchedule = "InvalidSchedule"
	ReasonInvalidPlan     = "InvalidPlan"
	ReasonEnforced        = "Enforced"
	ReasonNotEnforced     = "NotEnforced"
)

// levelReasons name each degradation level in the Degraded conditions of a QwenService and a
// DegradationPlan.
var levelReasons = map[int32]string{
	v1alpha1.LevelDisableStreaming: "DisableStreaming",
	v1alpha1.LevelDisableThinking:  "DisableThinking",
	v1alpha1.LevelFallbackModel:    "FallbackModel",
	v1alpha1.LevelStaticResponse:   "StaticResponse",
}

// setCondition is the one way this package sets a condition: c is stamped with the
// generation it describes, and its lastTransitionTime changes (to now) only when its status
// does.
func setCondition(conds *[]metav1.Condition, generation int64, now time.Time, c metav1.Condition) {
	c.ObservedGeneration, c.LastTransitionTime = generation, metav1.NewTime(now)
	meta.SetStatusCondition(conds, c)
}

// condition is a True (ok) or False condition.
func condition(typ string, ok bool, reason, msg string) metav1.Condition {
	c := metav1.Condition{Type: typ, Status: metav1.ConditionFalse, Reason: reason, Message: msg}
	if ok {
		c.Status = metav1.ConditionTrue
	}
	return c
}
