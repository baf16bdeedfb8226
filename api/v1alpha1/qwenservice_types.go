package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EngineType names the inference engine that serves the model.
// +kubebuilder:validation:Enum=VLLM;SGLang;Simulator
type EngineType string

// The inference engines.
const (
	// EngineVLLM runs vllm/vllm-openai (the default).
	EngineVLLM EngineType = "VLLM"
	// EngineSGLang runs lmsysorg/sglang's OpenAI-compatible server.
	EngineSGLang EngineType = "SGLang"
	// EngineSimulator runs llm-d-inference-sim: no GPU, for demos and GPU-less clusters.
	EngineSimulator EngineType = "Simulator"
)

// ModelSpec names the model an engine serves.
type ModelSpec struct {
	// name is the Hugging Face model id (Qwen/Qwen3-1.7B) or a local path in the model cache.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[^\s]+$`
	// +required
	Name string `json:"name"`
	// servedName is the model name clients send in the `model` field.
	// Default: the last path segment of name (Qwen/Qwen3-1.7B serves as Qwen3-1.7B).
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`
	// +optional
	ServedName string `json:"servedName,omitempty"`
	// revision is the model revision (branch, tag or commit) to download.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._/-]+$`
	// +optional
	Revision string `json:"revision,omitempty"`
	// maxModelLen caps the context length in tokens (vLLM --max-model-len).
	// +kubebuilder:validation:Minimum=128
	// +kubebuilder:validation:Maximum=1048576
	// +optional
	MaxModelLen *int32 `json:"maxModelLen,omitempty"`
	// reasoning configures Qwen3's thinking output.
	// +kubebuilder:default={}
	// +optional
	Reasoning ReasoningSpec `json:"reasoning,omitempty"`
	// toolCalling lets clients send `tools` with `tool_choice: "auto"` (OpenAI function calling,
	// LangChain bind_tools) and get `tool_calls` back.
	// +kubebuilder:default={}
	// +optional
	ToolCalling ToolCallingSpec `json:"toolCalling,omitempty"`
}

// ToolCallingSpec configures the engine's tool-call parser.
type ToolCallingSpec struct {
	// enabled adds the engine's tool-call parser: vLLM --enable-auto-tool-choice
	// --tool-call-parser, SGLang --tool-call-parser. The Simulator handles tools on its own.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// parser is the engine's tool-call parser name; default for Qwen3: hermes on vLLM, qwen25 on
	// SGLang. Qwen3-Coder models want qwen3_coder (vLLM: qwen3_xml or qwen3_coder).
	// +kubebuilder:validation:Pattern=`^[a-z0-9_-]+$`
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Parser string `json:"parser,omitempty"`
}

// ReasoningSpec configures the engine's reasoning parser.
type ReasoningSpec struct {
	// enabled adds the reasoning parser so thinking text returns apart from the answer.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// parser is the engine's reasoning parser name.
	// +kubebuilder:default=qwen3
	// +kubebuilder:validation:Pattern=`^[a-z0-9_-]+$`
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Parser string `json:"parser,omitempty"`
}

// EngineSpec configures the inference engine.
type EngineSpec struct {
	// type is the engine: VLLM, SGLang or Simulator.
	// +kubebuilder:default=VLLM
	// +optional
	Type EngineType `json:"type,omitempty"`
	// image overrides the engine image; default per type from the operator's flags.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[^\s]+$`
	// +optional
	Image string `json:"image,omitempty"`
	// args are extra engine arguments, appended after the ones the operator renders.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Args []string `json:"args,omitempty"`
	// env are extra environment variables for the engine container.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`
	// port the engine listens on inside the pod.
	// +kubebuilder:default=8000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
	// gpuMemoryUtilization is the fraction of GPU memory vLLM may use, in (0, 1], e.g. "0.90".
	// +kubebuilder:validation:XValidation:rule="double(self) > 0.0 && double(self) <= 1.0",message="gpuMemoryUtilization must be a fraction in (0, 1], such as \"0.90\""
	// +optional
	GPUMemoryUtilization Decimal `json:"gpuMemoryUtilization,omitempty"`
	// hfTokenSecretRef selects the Hugging Face token (env HF_TOKEN) for gated models.
	// +optional
	HFTokenSecretRef *SecretKeyRef `json:"hfTokenSecretRef,omitempty"`
}

// ResourcesSpec places and sizes engine pods.
type ResourcesSpec struct {
	// gpus per engine pod, requested under gpuResourceName. Default 1, or 0 for the Simulator.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=16
	// +optional
	GPUs *int32 `json:"gpus,omitempty"`
	// gpuResourceName is the extended resource that counts GPUs.
	// +kubebuilder:default="nvidia.com/gpu"
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	// +optional
	GPUResourceName string `json:"gpuResourceName,omitempty"`
	// requests for the engine container (cpu, memory, ...).
	// +optional
	Requests corev1.ResourceList `json:"requests,omitempty"`
	// limits for the engine container; GPUs are added from gpus.
	// +optional
	Limits corev1.ResourceList `json:"limits,omitempty"`
	// nodeSelector for engine pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// tolerations for engine pods (GPU nodes are often tainted).
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// runtimeClassName for engine pods, e.g. nvidia.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	RuntimeClassName string `json:"runtimeClassName,omitempty"`
}

// ModelCacheSpec is where model weights are cached: a new PVC (size), an existing one
// (claimName), or an emptyDir when the section is absent.
// +kubebuilder:validation:XValidation:rule="has(self.size) != has(self.claimName)",message="modelCache needs exactly one of size (the operator creates a PVC) or claimName (an existing PVC)"
// +kubebuilder:validation:XValidation:rule="!has(self.storageClassName) || has(self.size)",message="modelCache.storageClassName applies only with size"
type ModelCacheSpec struct {
	// size of the PVC the operator creates, e.g. 20Gi.
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`
	// storageClassName of the created PVC; default: the cluster's default class.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	StorageClassName string `json:"storageClassName,omitempty"`
	// claimName uses an existing PVC instead of creating one.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	ClaimName string `json:"claimName,omitempty"`
}

// FallbackSpec is a smaller model used at degradation level 3 and while the primary's breaker is open.
type FallbackSpec struct {
	// model served by the fallback engine, e.g. Qwen/Qwen3-0.6B.
	// +required
	Model ModelSpec `json:"model"`
	// replicas of the fallback engine.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=64
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// resources of the fallback engine pods; unset fields take the primary's. Not used with
	// placement SharedPod (the fallback shares the primary's pod and GPUs).
	// +optional
	Resources ResourcesSpec `json:"resources,omitempty"`
	// placement of the fallback engine: SeparateDeployment (default) runs it in its own
	// Deployment with its own GPUs; SharedPod runs it as a second container of every primary
	// engine pod, on the primary's GPU (one nvidia.com/gpu for both), so that a single-GPU node
	// holds both models. With SharedPod, replicas and resources are the primary's.
	// +kubebuilder:default=SeparateDeployment
	// +optional
	Placement FallbackPlacement `json:"placement,omitempty"`
	// port the fallback container listens on with placement SharedPod (the primary's is
	// spec.engine.port); the fallback Service serves on it too. Default: spec.engine.port + 1.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
	// gpuMemoryUtilization is the fraction of GPU memory the fallback engine may use, in (0, 1]
	// (vLLM --gpu-memory-utilization, SGLang --mem-fraction-static). With SharedPod it
	// defaults to "0.3", the primary's spec.engine.gpuMemoryUtilization to "0.6", and the two
	// must add up to at most 0.95.
	// +kubebuilder:validation:XValidation:rule="double(self) > 0.0 && double(self) <= 1.0",message="fallback.gpuMemoryUtilization must be a fraction in (0, 1], such as \"0.3\""
	// +optional
	GPUMemoryUtilization Decimal `json:"gpuMemoryUtilization,omitempty"`
}

// FallbackPlacement is where the fallback engine runs.
// +kubebuilder:validation:Enum=SeparateDeployment;SharedPod
type FallbackPlacement string

// Fallback placements.
const (
	// FallbackSeparateDeployment runs the fallback in its own Deployment.
	FallbackSeparateDeployment FallbackPlacement = "SeparateDeployment"
	// FallbackSharedPod runs the fallback as a second container of the primary's pods.
	FallbackSharedPod FallbackPlacement = "SharedPod"
)

// RedisSpec points the gateway at a Redis for global (cross-replica) limits: a standalone
// server (address), a master found through Redis Sentinel (sentinel), or a Redis Cluster
// (cluster).
// +kubebuilder:validation:XValidation:rule="(has(self.address) ? 1 : 0) + (has(self.sentinel) ? 1 : 0) + (has(self.cluster) ? 1 : 0) == 1",message="redis needs exactly one of address (a standalone Redis), sentinel or cluster"
// +kubebuilder:validation:XValidation:rule="!has(self.caSecretRef) || self.tls",message="redis.caSecretRef applies only with tls: true"
type RedisSpec struct {
	// address is host:port of a standalone Redis.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=261
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$`
	// +optional
	Address string `json:"address,omitempty"`
	// sentinel finds the master through Redis Sentinel and follows its failovers.
	// +optional
	Sentinel *RedisSentinelSpec `json:"sentinel,omitempty"`
	// cluster connects to a Redis Cluster. Every Redis key of one client carries the
	// client as its hash tag, so each decision stays one round trip to one node.
	// +optional
	Cluster *RedisClusterSpec `json:"cluster,omitempty"`
	// passwordSecretRef selects the password of the Redis servers.
	// +optional
	PasswordSecretRef *SecretKeyRef `json:"passwordSecretRef,omitempty"`
	// tls connects with TLS (to the sentinels too).
	// +optional
	TLS bool `json:"tls,omitempty"`
	// caSecretRef selects a PEM bundle of the certificate authorities that sign the Redis
	// servers' certificates; without it, the system's are trusted. Needs tls.
	// +optional
	CASecretRef *SecretKeyRef `json:"caSecretRef,omitempty"`
}

// RedisSentinelSpec names a master monitored by Redis Sentinel.
type RedisSentinelSpec struct {
	// masterName is the name the sentinels monitor the master under.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	MasterName string `json:"masterName"`
	// addresses are host:port of sentinels; the gateway learns the others from them.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=3
	// +kubebuilder:validation:items:MaxLength=261
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$`
	// +listType=atomic
	// +required
	Addresses []string `json:"addresses"`
	// passwordSecretRef selects the sentinels' own password (their requirepass); absent
	// means the sentinels need none.
	// +optional
	PasswordSecretRef *SecretKeyRef `json:"passwordSecretRef,omitempty"`
}

// RedisClusterSpec is a Redis Cluster.
type RedisClusterSpec struct {
	// addresses are host:port of some of the cluster's nodes (seeds); the gateway learns
	// the rest of the cluster, and every change to it, from them.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=3
	// +kubebuilder:validation:items:MaxLength=261
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$`
	// +listType=atomic
	// +required
	Addresses []string `json:"addresses"`
}

// GatewaySpec configures the policy gateway in front of the engines.
type GatewaySpec struct {
	// replicas of the gateway.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// image overrides the gateway image; default from the operator's flags.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[^\s]+$`
	// +optional
	Image string `json:"image,omitempty"`
	// apiKeysSecretRef names a Secret whose data maps key ids to API keys; absent means no auth.
	// +optional
	APIKeysSecretRef *LocalObjectRef `json:"apiKeysSecretRef,omitempty"`
	// redis holds limiter state shared by all gateway replicas; absent means each replica
	// limits locally with the limit divided by the replica count.
	// +optional
	Redis *RedisSpec `json:"redis,omitempty"`
	// trustedHops is the number of proxies in front of the gateway that each append the
	// address they were called from to X-Forwarded-For: the client is that many entries from
	// the right (Envoy's xff_num_trusted_hops). ingress-nginx and Envoy Gateway are one hop
	// each; a cloud L7 load balancer in front of them adds one. Default: 1 when spec.exposure
	// is set, 0 (X-Forwarded-For ignored) otherwise. Anyone who can reach the gateway Service
	// directly can then choose the address it is limited as: list the proxies in
	// trustedProxies too to believe the header only from them.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	TrustedHops *int32 `json:"trustedHops,omitempty"`
	// trustedProxies are the addresses (CIDRs or IPs) of the proxies in front of the gateway,
	// such as the ingress controller's pods. With trustedHops, X-Forwarded-For is believed only
	// on connections from them; without, the client is the right-most X-Forwarded-For entry that
	// is not one of them. Keep them narrow: every address listed can claim to be any client
	// (a pod CIDR such as 10.0.0.0/8 lets any pod in the cluster do so).
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self) || isIP(self)",message="trustedProxies entries must be CIDRs such as 10.96.4.0/28 or IP addresses"
	// +listType=set
	// +optional
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// maxRequestBodyBytes refuses larger request bodies with 413.
	// +kubebuilder:default=1048576
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=67108864
	// +optional
	MaxRequestBodyBytes *int64 `json:"maxRequestBodyBytes,omitempty"`
	// resources of the gateway container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// accessLog turns on the gateway's structured access log (one JSON line per request on
	// its log output, never an API key); absent: off.
	// +optional
	AccessLog *GatewayAccessLog `json:"accessLog,omitempty"`
}

// IngressExposure exposes the gateway through a networking.k8s.io Ingress.
type IngressExposure struct {
	// className is the IngressClass, e.g. nginx.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ClassName string `json:"className,omitempty"`
	// host the Ingress answers, e.g. qwen.example.com.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	Host string `json:"host"`
	// tlsSecretName enables TLS with this certificate Secret.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	TLSSecretName string `json:"tlsSecretName,omitempty"`
	// annotations are added to the Ingress; the operator's rate-limit annotations win on conflict.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ParentRef names a Gateway API Gateway (or other parent) the HTTPRoute attaches to.
type ParentRef struct {
	// group of the parent; default gateway.networking.k8s.io.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Group string `json:"group,omitempty"`
	// kind of the parent; default Gateway.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Kind string `json:"kind,omitempty"`
	// namespace of the parent; default the route's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// name of the parent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// sectionName is a listener name on the parent.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SectionName string `json:"sectionName,omitempty"`
}

// HTTPRouteExposure exposes the gateway through a Gateway API HTTPRoute.
type HTTPRouteExposure struct {
	// parentRefs are the Gateways the route attaches to.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +required
	ParentRefs []ParentRef `json:"parentRefs"`
	// hostnames the route matches.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Hostnames []string `json:"hostnames,omitempty"`
	// timeouts of the route's rule. A Gateway API implementation's own default is often far too
	// short for a long completion or stream (Envoy Gateway's: 15s for the whole response).
	// Default: 10m for both, the same bound as the Ingress's proxy timeouts.
	// +optional
	Timeouts *HTTPRouteTimeouts `json:"timeouts,omitempty"`
}

// HTTPRouteTimeouts are the Gateway API HTTPRouteRule timeouts, as Gateway API durations
// (GEP-2257: "10m", "1h30m", "500ms"); "0s" asks the implementation to disable the timeout.
// +kubebuilder:validation:XValidation:rule="!has(self.request) || !has(self.backendRequest) || duration(self.request) == duration('0s') || (duration(self.backendRequest) != duration('0s') && duration(self.backendRequest) <= duration(self.request))",message="timeouts.backendRequest must not be longer than timeouts.request"
type HTTPRouteTimeouts struct {
	// request bounds the whole request, from the client's first byte to the last byte of the
	// response (a stream's included). Default 10m.
	// +kubebuilder:validation:Pattern=`^([0-9]{1,5}(h|m|s|ms)){1,4}$`
	// +optional
	Request string `json:"request,omitempty"`
	// backendRequest bounds one call from the Gateway to the qwen gateway Service. Default: request.
	// +kubebuilder:validation:Pattern=`^([0-9]{1,5}(h|m|s|ms)){1,4}$`
	// +optional
	BackendRequest string `json:"backendRequest,omitempty"`
}

// ExposureSpec exposes the gateway outside the cluster: through an Ingress, an HTTPRoute, or both.
// +kubebuilder:validation:XValidation:rule="has(self.ingress) || has(self.httpRoute)",message="exposure needs ingress, httpRoute or both; remove exposure to keep the service cluster-internal"
type ExposureSpec struct {
	// ingress renders a networking.k8s.io/v1 Ingress with ingress-nginx rate-limit annotations.
	// +optional
	Ingress *IngressExposure `json:"ingress,omitempty"`
	// httpRoute renders a gateway.networking.k8s.io/v1 HTTPRoute (and an Envoy Gateway
	// BackendTrafficPolicy when that CRD is served).
	// +optional
	HTTPRoute *HTTPRouteExposure `json:"httpRoute,omitempty"`
}

// NetworkPolicySpec restricts who reaches the engine and fallback pods.
type NetworkPolicySpec struct {
	// enabled renders a NetworkPolicy that admits to the engine and fallback pods only the
	// gateway pods of this service and the metrics scrapers of metricsFrom, on the engine port.
	// It needs a network plugin that enforces NetworkPolicy (Calico, Cilium, ...).
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// metricsFrom are the peers allowed to scrape the engines' /metrics (which is on the
	// engine's API port). Default: pods labelled app.kubernetes.io/name=prometheus in any
	// namespace, as the Prometheus Operator labels its Prometheus pods.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	MetricsFrom []networkingv1.NetworkPolicyPeer `json:"metricsFrom,omitempty"`
}

// QwenServiceSpec is the desired state of a Qwen3 model service.
type QwenServiceSpec struct {
	// model to serve.
	// +required
	Model ModelSpec `json:"model"`
	// engine that serves it.
	// +kubebuilder:default={}
	// +optional
	Engine EngineSpec `json:"engine,omitempty"`
	// replicas of the engine Deployment.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=256
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// resources places and sizes the engine pods.
	// +kubebuilder:default={}
	// +optional
	Resources ResourcesSpec `json:"resources,omitempty"`
	// modelCache holds downloaded weights; absent means an emptyDir per pod.
	// +optional
	ModelCache *ModelCacheSpec `json:"modelCache,omitempty"`
	// fallback is a smaller model for degradation level 3 and for an open primary breaker.
	// +optional
	Fallback *FallbackSpec `json:"fallback,omitempty"`
	// gateway in front of the engines: auth, limits, degradation, breaker, metrics.
	// +kubebuilder:default={}
	// +optional
	Gateway GatewaySpec `json:"gateway,omitempty"`
	// exposure outside the cluster; absent means cluster-internal only.
	// +optional
	Exposure *ExposureSpec `json:"exposure,omitempty"`
	// networkPolicy restricts who reaches the engines; on unless enabled is false.
	// +kubebuilder:default={}
	// +optional
	NetworkPolicy NetworkPolicySpec `json:"networkPolicy,omitempty"`
}

// QwenServiceStatus is the observed state of a QwenService.
type QwenServiceStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready, EngineAvailable, GatewayAvailable, FallbackAvailable, Degraded,
	// ClientsIdentified.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// replicas of the engine Deployment.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// readyReplicas of the engine Deployment.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// servedModel is the name clients send as `model`.
	// +optional
	ServedModel string `json:"servedModel,omitempty"`
	// endpoint is the in-cluster OpenAI base URL of the gateway.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// url is the external OpenAI base URL, when exposed.
	// +optional
	URL string `json:"url,omitempty"`
	// degradationLevel in force (0 = normal, 1..4 = L1..L4).
	// +optional
	DegradationLevel int32 `json:"degradationLevel"`
	// rateLimit summarises the enforced limit, e.g. "50/min burst 10 (schedule: daytime)".
	// +optional
	RateLimit string `json:"rateLimit,omitempty"`
}

// QwenService serves a Qwen3 model behind a rate-limiting, self-degrading OpenAI-compatible gateway.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=qs,categories=qwen
// +kubebuilder:printcolumn:name="Model",type=string,JSONPath=`.spec.model.name`
// +kubebuilder:printcolumn:name="Engine",type=string,JSONPath=`.spec.engine.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Level",type=integer,JSONPath=`.status.degradationLevel`
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.endpoint`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type QwenService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec QwenServiceSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status QwenServiceStatus `json:"status,omitempty"`
}

// QwenServiceList is a list of QwenServices.
// +kubebuilder:object:root=true
type QwenServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []QwenService `json:"items"`
}

func init() {
	SchemeBuilder.Register(&QwenService{}, &QwenServiceList{})
}
