package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The degradation levels; levels are cumulative (L3 also does L1 and L2).
const (
	// LevelNormal is no degradation.
	LevelNormal int32 = 0
	// LevelDisableStreaming (L1) calls the engine without streaming.
	LevelDisableStreaming int32 = 1
	// LevelDisableThinking (L2) turns Qwen3's thinking off.
	LevelDisableThinking int32 = 2
	// LevelFallbackModel (L3) sends requests to the fallback model.
	LevelFallbackModel int32 = 3
	// LevelStaticResponse (L4) answers with the static reply without calling an engine.
	LevelStaticResponse int32 = 4
)

// PrometheusSpec says where, with which credentials and how often telemetry is read.
type PrometheusSpec struct {
	PrometheusConnection `json:",inline"`
	// interval between evaluations.
	// +kubebuilder:default="15s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="prometheus.interval must be between 1s and 1h"
	// +optional
	Interval metav1.Duration `json:"interval,omitzero"`
}

// DegradationLevel lists the triggers of one level.
type DegradationLevel struct {
	// level: 1 DisableStreaming, 2 DisableThinking, 3 FallbackModel, 4 StaticResponse.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4
	// +required
	Level int32 `json:"level"`
	// when lists the triggers; the level is active while ANY of them holds for `for`.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +required
	When []Trigger `json:"when"`
	// for is how long a trigger must hold before the level activates; default immediately.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('24h')",message="for must be at most 24h"
	// +optional
	For *metav1.Duration `json:"for,omitempty"`
}

// StaticResponse is the reply served at level 4 (and while no upstream can answer).
type StaticResponse struct {
	// message returned as the assistant's answer.
	// +kubebuilder:default="服务繁忙，请稍后再试"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Message string `json:"message,omitempty"`
	// httpStatus of the static reply: 200 (a normal-looking answer) or an error code such as 503.
	// +kubebuilder:default=200
	// +kubebuilder:validation:Minimum=200
	// +kubebuilder:validation:Maximum=599
	// +optional
	HTTPStatus int32 `json:"httpStatus,omitempty"`
}

// CircuitBreaker protects each upstream from repeated failures.
type CircuitBreaker struct {
	// failureThreshold consecutive failures (5xx, timeouts, connection errors) open the breaker.
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
	// recoveryTimeout is how long the breaker stays open before half-open probes.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="circuitBreaker.recoveryTimeout must be between 1s and 1h"
	// +optional
	RecoveryTimeout metav1.Duration `json:"recoveryTimeout,omitzero"`
	// halfOpenRequests are the probes let through after recoveryTimeout; all must succeed to close.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	HalfOpenRequests int32 `json:"halfOpenRequests,omitempty"`
}

// CacheBackend is where the response cache keeps its entries.
// +kubebuilder:validation:Enum=Memory;Redis
type CacheBackend string

// Cache backends.
const (
	// CacheMemory keeps entries in each gateway replica's memory.
	CacheMemory CacheBackend = "Memory"
	// CacheRedis keeps entries in the target's Redis (spec.gateway.redis), shared by the replicas.
	CacheRedis CacheBackend = "Redis"
)

// ResponseCache keeps successful answers (streamed or not) and serves them, instead of the
// static reply or 503, to requests no engine can take: while the circuit breakers leave no
// upstream, and at level 4 when serveAtLevel4 says so. An answer is found again by a hash of
// the endpoint, the API key and the whole request body except stream and stream_options.
type ResponseCache struct {
	// enabled turns the cache on.
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// backend holds the entries: Memory (default; each gateway replica its own, bounded by
	// maxBytes) or Redis (spec.gateway.redis of the target, shared by the replicas, bounded by
	// ttl and Redis's maxmemory).
	// +kubebuilder:default=Memory
	// +optional
	Backend CacheBackend `json:"backend,omitempty"`
	// maxBytes bounds the memory backend per gateway replica (least recently used answers are
	// evicted first); an answer larger than maxBytes/8 is not cached. It counts against the
	// gateway container's memory limit.
	// +kubebuilder:default=67108864
	// +kubebuilder:validation:Minimum=65536
	// +kubebuilder:validation:Maximum=17179869184
	// +optional
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// ttl is how long an answer is served after it was stored.
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('168h')",message="cache.ttl must be between 1s and 168h"
	// +optional
	TTL metav1.Duration `json:"ttl,omitzero"`
	// shareAcrossKeys serves an answer cached for one API key to every other key. Off by
	// default: an answer never crosses API keys.
	// +optional
	ShareAcrossKeys bool `json:"shareAcrossKeys,omitempty"`
	// serveAtLevel4 serves cached answers at level 4 too, before the static reply.
	// +optional
	ServeAtLevel4 bool `json:"serveAtLevel4,omitempty"`
}

// LevelOverride pins the level by hand (drills, incidents).
type LevelOverride struct {
	// level to pin, 0..4.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4
	// +required
	Level int32 `json:"level"`
	// reason shown in status.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Reason string `json:"reason,omitempty"`
}

// DegradationPlanSpec is how a QwenService steps down under pressure.
type DegradationPlanSpec struct {
	// targetRef is the QwenService in this namespace.
	// +required
	TargetRef TargetRef `json:"targetRef"`
	// prometheus to read the signals from.
	// +kubebuilder:default={}
	// +kubebuilder:validation:XValidation:rule="!(has(self.authorization) && has(self.basicAuth))",message="prometheus: use authorization or basicAuth, not both"
	// +kubebuilder:validation:XValidation:rule="!has(self.tlsConfig) || !has(self.url) || self.url.startsWith('https://')",message="prometheus.tlsConfig needs an https url"
	// +optional
	Prometheus PrometheusSpec `json:"prometheus,omitempty"`
	// levels and their triggers; each level number at most once.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	// +listType=map
	// +listMapKey=level
	// +required
	Levels []DegradationLevel `json:"levels"`
	// cooldown is the minimum time at a level before stepping down.
	// +kubebuilder:default="2m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('24h')",message="cooldown must be at most 24h"
	// +optional
	Cooldown metav1.Duration `json:"cooldown,omitzero"`
	// recoveryMargin is the percent below `above` a value must fall before its trigger counts as cleared.
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	RecoveryMargin int32 `json:"recoveryMargin,omitempty"`
	// staticResponse served at level 4.
	// +kubebuilder:default={}
	// +optional
	StaticResponse StaticResponse `json:"staticResponse,omitempty"`
	// circuitBreaker settings for each upstream.
	// +kubebuilder:default={}
	// +optional
	CircuitBreaker CircuitBreaker `json:"circuitBreaker,omitempty"`
	// cache serves earlier answers while no engine can answer (see ResponseCache).
	// +optional
	Cache *ResponseCache `json:"cache,omitempty"`
	// override pins the level by hand; it wins over telemetry.
	// +optional
	Override *LevelOverride `json:"override,omitempty"`
	// classes says how the level applies to each request class (the RateLimitPolicy assigns
	// the classes; without one every request is Standard).
	// +kubebuilder:default={}
	// +optional
	Classes ClassLevels `json:"classes,omitzero"`
}

// ClassLevels turns the plan's level into each request class's. At level 0 every class is
// served normally; at level N > 0 Standard requests get N, Sheddable requests
// min(N + sheddableStepsAhead, 4) and Critical requests min(N, criticalMaxLevel).
type ClassLevels struct {
	// criticalMaxLevel is the most a Critical request is degraded (its ceiling). Default 2
	// (no streaming and no thinking, but the primary model and a real answer).
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4
	// +optional
	CriticalMaxLevel *int32 `json:"criticalMaxLevel,omitempty"`
	// sheddableStepsAhead is how many levels ahead of Standard a Sheddable request is
	// degraded, once the plan's level is above 0. Default 1; 0 treats it as Standard.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4
	// +optional
	SheddableStepsAhead *int32 `json:"sheddableStepsAhead,omitempty"`
}

// LevelTransition records one change of level.
type LevelTransition struct {
	// level entered.
	Level int32 `json:"level"`
	// time of the change.
	Time metav1.Time `json:"time"`
	// reason for the change.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// DegradationPlanStatus is the level the controller decided.
type DegradationPlanStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Accepted, TelemetryAvailable, Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// level in force, 0..4.
	// +optional
	Level int32 `json:"level"`
	// since is when the current level began.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// reasons the level holds, with the measured values.
	// +optional
	Reasons []string `json:"reasons,omitempty"`
	// signals are the last measured values by signal name.
	// +optional
	Signals map[string]string `json:"signals,omitempty"`
	// history of the last 10 transitions, newest last.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	History []LevelTransition `json:"history,omitempty"`
}

// DegradationPlan moves a QwenService through L1 no streaming, L2 no thinking, L3 smaller
// model and L4 static reply as telemetry crosses thresholds, with hysteresis and a circuit breaker.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dp,categories=qwen
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Level",type=integer,JSONPath=`.status.level`
// +kubebuilder:printcolumn:name="Since",type=date,JSONPath=`.status.since`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reasons[0]`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DegradationPlan struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec DegradationPlanSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status DegradationPlanStatus `json:"status,omitempty"`
}

// DegradationPlanList is a list of DegradationPlans.
// +kubebuilder:object:root=true
type DegradationPlanList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DegradationPlan `json:"items"`
}

func init() {
	SchemeBuilder.Register(&DegradationPlan{}, &DegradationPlanList{})
}
