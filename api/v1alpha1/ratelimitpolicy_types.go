package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PolicyMode says whether a RateLimitPolicy rejects requests or only counts them.
// +kubebuilder:validation:Enum=Enforce;Shadow
type PolicyMode string

// The policy modes.
const (
	// ModeEnforce rejects requests over the limit with 429.
	ModeEnforce PolicyMode = "Enforce"
	// ModeShadow counts and reports requests over the limit but never rejects them.
	ModeShadow PolicyMode = "Shadow"
)

// KeySource says what identifies a client for limiting.
// +kubebuilder:validation:Enum=APIKey;ClientIP;Header
type KeySource string

// The key sources.
const (
	// KeyAPIKey limits per API key id (needs gateway.apiKeysSecretRef).
	KeyAPIKey KeySource = "APIKey"
	// KeyClientIP limits per client IP (X-Forwarded-For only from trusted proxies).
	KeyClientIP KeySource = "ClientIP"
	// KeyHeader limits per value of a request header (at most 256 bytes; the gateway keys by
	// its hash). Meaningful only behind a proxy that sets the header: a client that reaches the
	// gateway directly can send any value and be limited as anyone.
	KeyHeader KeySource = "Header"
)

// Algorithm is a rate-limiting algorithm.
// +kubebuilder:validation:Enum=TokenBucket;SlidingWindow;SlidingLog;FixedWindow;LeakyBucket;Hybrid
type Algorithm string

// The algorithms.
const (
	// AlgorithmTokenBucket allows bursts up to burst, refilling requestsPerMinute per minute.
	AlgorithmTokenBucket Algorithm = "TokenBucket"
	// AlgorithmSlidingWindow is a sliding-window counter: the current calendar minute's count
	// plus the previous minute's weighted by how much of it the last 60 s still cover. It is an
	// estimate, not a count of the last 60 s: traffic bunched at the end of one minute can see
	// up to 2×requestsPerMinute−1 in one 60 s span (59 for 30/min).
	AlgorithmSlidingWindow Algorithm = "SlidingWindow"
	// AlgorithmSlidingLog is the exact log of the admissions of the last 60 s (a sorted set in
	// Redis): no 60 s span ever holds more than requestsPerMinute. It keeps an entry per
	// admitted request, so requestsPerMinute is at most 10000 with it.
	AlgorithmSlidingLog Algorithm = "SlidingLog"
	// AlgorithmFixedWindow counts requests per calendar minute, like slowapi's "30/minute":
	// up to 2×requestsPerMinute in a 60 s span that straddles two minutes.
	AlgorithmFixedWindow Algorithm = "FixedWindow"
	// AlgorithmLeakyBucket is a bucket of burst requests draining at requestsPerMinute. Without
	// spec.queue it does not queue: a request that does not fit is rejected at once (its
	// decisions equal TokenBucket's). With spec.queue requests wait for their turn in a fair
	// queue and leave at the drain rate (see QueueSpec).
	AlgorithmLeakyBucket Algorithm = "LeakyBucket"
	// AlgorithmHybrid admits only what both a sliding window and a token bucket admit (the default).
	AlgorithmHybrid Algorithm = "Hybrid"
)

// Criticality is a request's class: it decides the degradation level the request gets (see
// the DegradationPlan's classes) and its place in a LeakyBucket queue. The names are those of
// the Gateway API Inference Extension's InferenceObjective.
// +kubebuilder:validation:Enum=Critical;Standard;Sheddable
type Criticality string

// The classes.
const (
	// CriticalityCritical is degraded last, at most to the plan's classes.criticalMaxLevel,
	// and served first from a queue.
	CriticalityCritical Criticality = "Critical"
	// CriticalityStandard gets the plan's level (the default).
	CriticalityStandard Criticality = "Standard"
	// CriticalitySheddable is degraded first: classes.sheddableStepsAhead levels ahead.
	CriticalitySheddable Criticality = "Sheddable"
)

// FailureMode says what the gateway does when the shared limiter state (Redis) cannot be reached.
// +kubebuilder:validation:Enum=FailOpen;FailClosed
type FailureMode string

// The failure modes.
const (
	// FailOpen admits requests while Redis is unreachable.
	FailOpen FailureMode = "FailOpen"
	// FailClosed rejects requests while Redis is unreachable.
	FailClosed FailureMode = "FailClosed"
)

// Weekday is a three-letter day name.
// +kubebuilder:validation:Enum=Mon;Tue;Wed;Thu;Fri;Sat;Sun
type Weekday string

// KeySpec says how clients are told apart.
// +kubebuilder:validation:XValidation:rule="(has(self.source) && self.source == 'Header') == has(self.header)",message="key.header is required when key.source is Header and not allowed otherwise"
type KeySpec struct {
	// source of the key: APIKey, ClientIP or Header.
	// +kubebuilder:default=ClientIP
	// +optional
	Source KeySource `json:"source,omitempty"`
	// header whose value is the key, for source Header (e.g. X-User-Id).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	// +optional
	Header string `json:"header,omitempty"`
	// ipv6PrefixLength is how many leading bits of an IPv6 client address make its key (source
	// ClientIP, and the fallback to the client address of the other sources): one host usually
	// holds a whole /64, so per-address keys would give it 2^64 buckets. 128 keys per address.
	// +kubebuilder:default=64
	// +kubebuilder:validation:Minimum=16
	// +kubebuilder:validation:Maximum=128
	// +optional
	IPv6PrefixLength *int32 `json:"ipv6PrefixLength,omitempty"`
}

// LimitSet is a set of per-key limits; an absent field means no limit on that dimension.
// +kubebuilder:validation:XValidation:rule="has(self.requestsPerMinute) || has(self.tokensPerMinute) || has(self.inputTokensPerMinute) || has(self.outputTokensPerMinute) || has(self.maxConcurrentRequests) || has(self.burst) || has(self.requestsPerHour) || has(self.requestsPerDay) || has(self.tokensPerHour) || has(self.tokensPerDay)",message="set at least one limit: requestsPerMinute, burst, tokensPerMinute, inputTokensPerMinute, outputTokensPerMinute, maxConcurrentRequests, requestsPerHour, requestsPerDay, tokensPerHour or tokensPerDay"
type LimitSet struct {
	// requestsPerMinute per key.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	RequestsPerMinute *int32 `json:"requestsPerMinute,omitempty"`
	// burst is the token-bucket capacity (TokenBucket, Hybrid) or queue size (LeakyBucket).
	// Default: requestsPerMinute.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	Burst *int32 `json:"burst,omitempty"`
	// tokensPerMinute caps prompt + completion tokens per key. At most 18,000,000, the most the limiters count
	// exactly in a minute (adaptive scaling stops there too).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=18000000
	// +optional
	TokensPerMinute *int64 `json:"tokensPerMinute,omitempty"`
	// inputTokensPerMinute caps prompt tokens per key. At most 18,000,000, the most the limiters count
	// exactly in a minute (adaptive scaling stops there too).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=18000000
	// +optional
	InputTokensPerMinute *int64 `json:"inputTokensPerMinute,omitempty"`
	// outputTokensPerMinute caps completion tokens per key. At most 18,000,000, the most the limiters count
	// exactly in a minute (adaptive scaling stops there too).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=18000000
	// +optional
	OutputTokensPerMinute *int64 `json:"outputTokensPerMinute,omitempty"`
	// maxConcurrentRequests in flight per key.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	// +optional
	MaxConcurrentRequests *int32 `json:"maxConcurrentRequests,omitempty"`
	// requestsPerHour is a budget of requests per key per hour, on top of the per-minute
	// limits. It is a sliding-window estimate over 3600 s (the previous hour weighted down),
	// not an exact count: a span that straddles two hours can admit up to twice the budget.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000
	// +optional
	RequestsPerHour *int32 `json:"requestsPerHour,omitempty"`
	// requestsPerDay is a budget of requests per key per day: a sliding-window estimate over
	// 86400 s, like requestsPerHour (up to twice the budget in a span straddling two days).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000
	// +optional
	RequestsPerDay *int32 `json:"requestsPerDay,omitempty"`
	// tokensPerHour is a budget of prompt + completion tokens per key per hour, charged and
	// trued up like tokensPerMinute; a sliding-window estimate like requestsPerHour. At most
	// 100,000,000,000.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000000000
	// +optional
	TokensPerHour *int64 `json:"tokensPerHour,omitempty"`
	// tokensPerDay is a budget of prompt + completion tokens per key per day (the most
	// asked-for LLM gateway limit); a sliding-window estimate like requestsPerHour. At most
	// 10,000,000,000, which the limiters count without overflow.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000000000
	// +optional
	TokensPerDay *int64 `json:"tokensPerDay,omitempty"`
}

// Schedule overrides limits during a daily time window.
// +kubebuilder:validation:XValidation:rule="self.start != self.end",message="schedule start and end must differ; for an all-day change edit the base limits"
type Schedule struct {
	// name of the schedule, shown in status.activeSchedule.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`
	// days the window starts on (in the policy's timezone); default every day.
	// +kubebuilder:validation:MaxItems=7
	// +listType=set
	// +optional
	Days []Weekday `json:"days,omitempty"`
	// start of the window, HH:MM in the policy's timezone.
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	// +kubebuilder:validation:MaxLength=5
	// +required
	Start string `json:"start"`
	// end of the window, HH:MM; an end before start wraps past midnight into the next day.
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	// +kubebuilder:validation:MaxLength=5
	// +required
	End string `json:"end"`
	// limits set here override the base limits while the window is active.
	// +required
	Limits LimitSet `json:"limits"`
}

// AdaptiveRule scales the limits while a telemetry signal is above a threshold.
type AdaptiveRule struct {
	Trigger `json:",inline"`
	// scale multiplies every rate limit while the trigger holds, in (0, 10]; "0.5" halves them.
	// +kubebuilder:validation:XValidation:rule="double(self) > 0.0 && double(self) <= 10.0",message="scale must be a decimal in (0, 10], such as \"0.5\""
	// +required
	Scale Decimal `json:"scale"`
}

// LimitOverride gives named keys their own limits (a tier).
type LimitOverride struct {
	// name of the tier.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`
	// keys in this tier: API key ids (APIKey), IPs or CIDRs (ClientIP), or header values (Header).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	// +required
	Keys []string `json:"keys"`
	// limits for these keys; fields set here override the effective limits.
	// +required
	Limits LimitSet `json:"limits"`
	// criticality of these keys' requests; default the policy's.
	// +optional
	Criticality Criticality `json:"criticality,omitempty"`
}

// MaxSlidingLogRequestsPerMinute is the largest requestsPerMinute of a SlidingLog policy: the
// log keeps an entry per admitted request (16 bytes in memory, a sorted-set member in Redis).
const MaxSlidingLogRequestsPerMinute = 10000

// QueueSpec makes a LeakyBucket policy hold requests until their turn instead of refusing
// them. Each client's bucket (shared through Redis when the service has one) decides when its
// request may go: the bucket drains one request every 60/requestsPerMinute seconds, and a
// request waits until those ahead of it have drained. The gateway replica that received it
// waits locally. A request whose turn is further away than maxWait gets 429 at once.
type QueueSpec struct {
	// maxWait is the longest a request may wait for its turn, at most 10m.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('10m')",message="queue.maxWait must be greater than 0s and at most 10m"
	// +required
	MaxWait metav1.Duration `json:"maxWait"`
	// maxQueued bounds the requests waiting on one gateway replica, over every client. When
	// it is full, a newcomer takes the place of the newest, least critical request of the
	// client with the most requests waiting (that one gets 429), unless its own client has as
	// many waiting: one heavy client cannot fill the queue. Default 100.
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	// +optional
	MaxQueued *int32 `json:"maxQueued,omitempty"`
}

// RateLimitPolicySpec is the desired limiting of one QwenService.
// +kubebuilder:validation:XValidation:rule="!has(self.queue) || (has(self.algorithm) && self.algorithm == 'LeakyBucket')",message="queue needs algorithm LeakyBucket"
// +kubebuilder:validation:XValidation:rule="!has(self.algorithm) || self.algorithm != 'SlidingLog' || ((!has(self.limits.requestsPerMinute) || self.limits.requestsPerMinute <= 10000) && (!has(self.schedules) || self.schedules.all(s, !has(s.limits.requestsPerMinute) || s.limits.requestsPerMinute <= 10000)) && (!has(self.overrides) || self.overrides.all(o, !has(o.limits.requestsPerMinute) || o.limits.requestsPerMinute <= 10000)))",message="requestsPerMinute must be at most 10000 with algorithm SlidingLog (it keeps an entry per admitted request), in limits, schedules and overrides"
type RateLimitPolicySpec struct {
	// targetRef is the QwenService in this namespace.
	// +required
	TargetRef TargetRef `json:"targetRef"`
	// mode: Enforce rejects over-limit requests, Shadow only counts them.
	// +kubebuilder:default=Enforce
	// +optional
	Mode PolicyMode `json:"mode,omitempty"`
	// key says how clients are told apart.
	// +kubebuilder:default={}
	// +optional
	Key KeySpec `json:"key,omitempty"`
	// algorithm for requestsPerMinute.
	// +kubebuilder:default=Hybrid
	// +optional
	Algorithm Algorithm `json:"algorithm,omitempty"`
	// limits are the base limits.
	// +required
	Limits LimitSet `json:"limits"`
	// queue makes a LeakyBucket hold requests for their turn instead of refusing them.
	// +optional
	Queue *QueueSpec `json:"queue,omitempty"`
	// criticality of the requests of keys outside the override tiers (which may set their own).
	// +kubebuilder:default=Standard
	// +optional
	Criticality Criticality `json:"criticality,omitempty"`
	// criticalityHeader names a request header (e.g. X-Qwen-Criticality: Critical) that sets
	// a request's class over its tier's. It is honoured only on connections from an address in
	// the QwenService's gateway.trustedProxies (never without them), so the proxy there must set
	// or remove it: a proxy that passes a client's headers through lets clients choose.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	// +optional
	CriticalityHeader string `json:"criticalityHeader,omitempty"`
	// timezone (IANA name) the schedules are read in.
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$`
	// +optional
	Timezone string `json:"timezone,omitempty"`
	// schedules override limits in daily windows; the first active one in list order wins.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	// +optional
	Schedules []Schedule `json:"schedules,omitempty"`
	// adaptive rules scale the limits from telemetry; the smallest matching scale wins.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Adaptive []AdaptiveRule `json:"adaptive,omitempty"`
	// prometheus the adaptive rules read telemetry from: its url (default: the operator's
	// --prometheus-url flag) and credentials.
	// +kubebuilder:validation:XValidation:rule="!(has(self.authorization) && has(self.basicAuth))",message="prometheus: use authorization or basicAuth, not both"
	// +kubebuilder:validation:XValidation:rule="!has(self.tlsConfig) || !has(self.url) || self.url.startsWith('https://')",message="prometheus.tlsConfig needs an https url"
	// +optional
	Prometheus *PrometheusConnection `json:"prometheus,omitempty"`
	// overrides give named keys their own limits.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Overrides []LimitOverride `json:"overrides,omitempty"`
	// failureMode when Redis cannot be reached: FailOpen admits, FailClosed rejects.
	// +kubebuilder:default=FailOpen
	// +optional
	FailureMode FailureMode `json:"failureMode,omitempty"`
	// assumedMaxTokens is what the token limits charge up front, per choice, for a request
	// that sets neither max_tokens nor max_completion_tokens (most SDKs send neither). A request
	// is charged its prompt (bytes / 4) plus max_tokens × max(n, best_of) before it runs, at
	// most the limit, and trued up to the usage the engine reports; a stream cut short before
	// its usage is charged a token per chunk it streamed.
	// +kubebuilder:default=4096
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	AssumedMaxTokens *int64 `json:"assumedMaxTokens,omitempty"`
}

// RateLimitPolicyStatus is what the controller computed. It is the whole interface between
// the RateLimitPolicy controller and the QwenService controller: the latter renders
// status.effective into the gateway and the edge, reads nothing from spec, and renders no
// limits at all for a policy whose status has not caught up with its spec (observedGeneration
// below metadata.generation) or that is not Accepted.
type RateLimitPolicyStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Accepted, Enforced.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// activeSchedule is the name of the schedule in force, empty for the base limits.
	// +optional
	ActiveSchedule string `json:"activeSchedule,omitempty"`
	// adaptiveScale applied now ("1" when no adaptive rule holds).
	// +optional
	AdaptiveScale Decimal `json:"adaptiveScale,omitempty"`
	// nextTransitionTime is when the active schedule next changes.
	// +optional
	NextTransitionTime *metav1.Time `json:"nextTransitionTime,omitempty"`
	// effective is the policy as the gateway enforces it now, fully resolved; absent while the
	// policy is not accepted.
	// +optional
	Effective *EffectivePolicy `json:"effective,omitempty"`
}

// EffectivePolicy is a RateLimitPolicy resolved at one instant: the settings it was accepted
// with and the complete limits of every tier. The base limits are the active schedule's
// merged over spec.limits; each override's limits are merged over those; every tier is then
// scaled by adaptiveScale. The RateLimitPolicy controller is the only place that works these
// out; the renderer copies them. The request classes, the queue and the hourly and daily
// budgets are resolved here the same way.
type EffectivePolicy struct {
	// mode in force: Enforce or Shadow.
	// +optional
	Mode PolicyMode `json:"mode,omitempty"`
	// key says how clients are told apart.
	// +optional
	Key KeySpec `json:"key,omitzero"`
	// algorithm for requestsPerMinute.
	// +optional
	Algorithm Algorithm `json:"algorithm,omitempty"`
	// failureMode when Redis cannot be reached.
	// +optional
	FailureMode FailureMode `json:"failureMode,omitempty"`
	// assumedMaxTokens charged per choice for a request that sets no max_tokens.
	// +optional
	AssumedMaxTokens *int64 `json:"assumedMaxTokens,omitempty"`
	// queue of a LeakyBucket policy, as in spec.
	// +optional
	Queue *QueueSpec `json:"queue,omitempty"`
	// criticality of the keys outside the override tiers.
	// +optional
	Criticality Criticality `json:"criticality,omitempty"`
	// criticalityHeader a trusted proxy may set, as in spec.
	// +optional
	CriticalityHeader string `json:"criticalityHeader,omitempty"`
	// limits of every key outside the override tiers.
	// +required
	Limits LimitSet `json:"limits"`
	// overrides are the tiers of spec.overrides in spec order, each with complete limits.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Overrides []EffectiveOverride `json:"overrides,omitempty"`
}

// EffectiveOverride is an override tier with its complete limits.
type EffectiveOverride struct {
	// name of the tier.
	// +required
	Name string `json:"name"`
	// keys in this tier, as in spec.overrides.
	// +listType=set
	// +required
	Keys []string `json:"keys"`
	// limits of these keys: every field is the tier's value, or the base limits' where the
	// tier leaves it unset.
	// +required
	Limits LimitSet `json:"limits"`
	// criticality of these keys' requests: the tier's, else the policy's.
	// +optional
	Criticality Criticality `json:"criticality,omitempty"`
}

// RateLimitPolicy limits requests and tokens per client for a QwenService, with time-of-day
// schedules and telemetry-adaptive scaling.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rlp,categories=qwen
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="RPM",type=integer,JSONPath=`.status.effective.limits.requestsPerMinute`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.status.activeSchedule`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.status.effective.mode`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RateLimitPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec RateLimitPolicySpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status RateLimitPolicyStatus `json:"status,omitempty"`
}

// RateLimitPolicyList is a list of RateLimitPolicies.
// +kubebuilder:object:root=true
type RateLimitPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RateLimitPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RateLimitPolicy{}, &RateLimitPolicyList{})
}
