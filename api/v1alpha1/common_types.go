package v1alpha1

// TargetRef names a QwenService in the same namespace as the policy.
type TargetRef struct {
	// name of the QwenService in the policy's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// LocalObjectRef names an object in the same namespace.
type LocalObjectRef struct {
	// name of the object in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// SecretKeyRef selects one key of a Secret in the same namespace.
type SecretKeyRef struct {
	// name of the Secret in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// key inside the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:default=token
	// +optional
	Key string `json:"key,omitempty"`
}

// Decimal is a non-negative decimal number written as a string, such as "0.5" or "83".
// +kubebuilder:validation:Pattern=`^[0-9]{1,9}(\.[0-9]{1,6})?$`
// +kubebuilder:validation:MaxLength=16
type Decimal string

// Signal names a telemetry signal; each is a PromQL preset scoped to the target's pods,
// except PromQL, which runs the trigger's own query. The engine signals (KVCacheUsage,
// QueueDepth, P95TimeToFirstTokenSeconds) read the metrics of the target's engine type: vllm:*
// for VLLM and Simulator, sglang:* for SGLang.
// +kubebuilder:validation:Enum=GPUTemperature;GPUUtilization;GPUMemoryUsed;KVCacheUsage;QueueDepth;P95TimeToFirstTokenSeconds;P95LatencySeconds;ErrorRate;PromQL
type Signal string

// The telemetry signals.
const (
	// SignalGPUTemperature is the hottest GPU of the target's engine pods, in °C (DCGM_FI_DEV_GPU_TEMP).
	SignalGPUTemperature Signal = "GPUTemperature"
	// SignalGPUUtilization is the mean GPU utilisation of the engine pods, in percent (DCGM_FI_DEV_GPU_UTIL).
	SignalGPUUtilization Signal = "GPUUtilization"
	// SignalGPUMemoryUsed is the largest framebuffer fraction in use, 0..1 (DCGM_FI_DEV_FB_USED / total).
	SignalGPUMemoryUsed Signal = "GPUMemoryUsed"
	// SignalKVCacheUsage is the largest KV-cache usage of the engines, 0..1
	// (vllm:kv_cache_usage_perc, sglang:token_usage).
	SignalKVCacheUsage Signal = "KVCacheUsage"
	// SignalQueueDepth is the number of requests waiting in the engines
	// (vllm:num_requests_waiting, sglang:num_queue_reqs).
	SignalQueueDepth Signal = "QueueDepth"
	// SignalP95TimeToFirstTokenSeconds is the engines' p95 time to first token over 2m, in
	// seconds (vllm:time_to_first_token_seconds, sglang:time_to_first_token_seconds).
	SignalP95TimeToFirstTokenSeconds Signal = "P95TimeToFirstTokenSeconds"
	// SignalP95LatencySeconds is the gateway's p95 request latency over 2m, in seconds.
	SignalP95LatencySeconds Signal = "P95LatencySeconds"
	// SignalErrorRate is the gateway's 5xx share over 2m, 0..1.
	SignalErrorRate Signal = "ErrorRate"
	// SignalPromQL runs the trigger's own query ($namespace, $service, $pods substituted).
	SignalPromQL Signal = "PromQL"
)

// Trigger holds while the signal's value is above the threshold.
// +kubebuilder:validation:XValidation:rule="self.signal == 'PromQL' ? has(self.query) : !has(self.query)",message="query is required when signal is PromQL and not allowed for the other signals"
type Trigger struct {
	// signal to read.
	// +required
	Signal Signal `json:"signal"`
	// query is the PromQL expression for signal PromQL; it must return one number.
	// $namespace, $service and $pods are substituted.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Query string `json:"query,omitempty"`
	// above is the threshold: the trigger holds while the value is strictly greater.
	// +required
	Above Decimal `json:"above"`
}

// Key names the value a trigger reads: the signal name for presets ("GPUTemperature") and
// "PromQL(<query>)" for a query of its own. Readings are keyed by it (status.signals of a
// DegradationPlan, the adaptive rules of a RateLimitPolicy), and reasons name the signal by it.
func (t Trigger) Key() string {
	if t.Signal == SignalPromQL {
		return "PromQL(" + t.Query + ")"
	}
	return string(t.Signal)
}

// Condition types used by the three kinds.
const (
	// ConditionReady is True when the QwenService serves traffic through its gateway.
	ConditionReady = "Ready"
	// ConditionEngineAvailable is True when the engine Deployment has its minimum replicas available.
	ConditionEngineAvailable = "EngineAvailable"
	// ConditionGatewayAvailable is True when the gateway Deployment has its minimum replicas available.
	ConditionGatewayAvailable = "GatewayAvailable"
	// ConditionFallbackAvailable is True when the fallback Deployment is available (False when none is set).
	ConditionFallbackAvailable = "FallbackAvailable"
	// ConditionDegraded is True while a degradation level above 0 is in force.
	ConditionDegraded = "Degraded"
	// ConditionClientsIdentified is False when the enforced RateLimitPolicy limits per client
	// IP but the gateway cannot tell clients apart: exposed through a proxy with no trust
	// setting, every client shares the proxy's limit.
	ConditionClientsIdentified = "ClientsIdentified"
	// ConditionAccepted is True when a policy is valid and not in conflict with another.
	ConditionAccepted = "Accepted"
	// ConditionEnforced is True when a RateLimitPolicy's limits are rendered into the gateway.
	ConditionEnforced = "Enforced"
	// ConditionTelemetryAvailable is True when the last Prometheus query succeeded.
	ConditionTelemetryAvailable = "TelemetryAvailable"
)
