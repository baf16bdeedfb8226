package render

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

var testDefaults = Defaults{
	VLLMImage:      "vllm/vllm-openai:v0.11.0",
	SGLangImage:    "lmsysorg/sglang:v0.5.4",
	SimulatorImage: "ghcr.io/llm-d/llm-d-inference-sim:v0.10.2",
	GatewayImage:   "ghcr.io/qwenops/qwen-gateway:test",
}

// service is a QwenService as the API server returns it after defaulting.
func service(engine v1alpha1.EngineType) *v1alpha1.QwenService {
	return &v1alpha1.QwenService{
		ObjectMeta: metav1.ObjectMeta{Name: "qwen3", Namespace: "ai", UID: "0d8f6a52-3c1e-4c57-9b7e-5f0a4a6d9b01", Generation: 1},
		Spec: v1alpha1.QwenServiceSpec{
			Model: v1alpha1.ModelSpec{
				Name:      "Qwen/Qwen3-1.7B",
				Reasoning: v1alpha1.ReasoningSpec{Enabled: ptr.To(true), Parser: "qwen3"},
			},
			Engine:    v1alpha1.EngineSpec{Type: engine, Port: 8000},
			Replicas:  ptr.To(int32(1)),
			Resources: v1alpha1.ResourcesSpec{GPUResourceName: "nvidia.com/gpu"},
			Gateway:   v1alpha1.GatewaySpec{Replicas: ptr.To(int32(2)), MaxRequestBodyBytes: ptr.To(int64(1 << 20))},
		},
	}
}

// fullVLLM uses every section: fallback, cache PVC, HF token, API keys, Redis, Ingress with
// TLS and user annotations, a policy with overrides and a plan at level 2.
func fullVLLM() Inputs {
	qs := service(v1alpha1.EngineVLLM)
	qs.Spec.Model.MaxModelLen = ptr.To(int32(8192))
	qs.Spec.Model.Revision = "main"
	qs.Spec.Engine.GPUMemoryUtilization = "0.90"
	qs.Spec.Engine.HFTokenSecretRef = &v1alpha1.SecretKeyRef{Name: "hf", Key: "token"}
	qs.Spec.Engine.Args = []string{"--enable-prefix-caching"}
	qs.Spec.Engine.Env = []corev1.EnvVar{{Name: "VLLM_LOGGING_LEVEL", Value: "INFO"}}
	qs.Spec.Resources.GPUs = ptr.To(int32(2))
	qs.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi")}
	qs.Spec.Resources.NodeSelector = map[string]string{"nvidia.com/gpu.product": "NVIDIA-L4", "cloud.google.com/gke-accelerator": "nvidia-l4"}
	qs.Spec.Resources.Tolerations = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	qs.Spec.Resources.RuntimeClassName = "nvidia"
	qs.Spec.ModelCache = &v1alpha1.ModelCacheSpec{Size: ptr.To(resource.MustParse("20Gi")), StorageClassName: "fast"}
	qs.Spec.Fallback = &v1alpha1.FallbackSpec{
		Model:     v1alpha1.ModelSpec{Name: "Qwen/Qwen3-0.6B"},
		Replicas:  ptr.To(int32(1)),
		Resources: v1alpha1.ResourcesSpec{GPUs: ptr.To(int32(1))},
	}
	qs.Spec.Gateway.APIKeysSecretRef = &v1alpha1.LocalObjectRef{Name: "qwen3-keys"}
	qs.Spec.Gateway.Redis = &v1alpha1.RedisSpec{Address: "redis.ai:6379", PasswordSecretRef: &v1alpha1.SecretKeyRef{Name: "redis", Key: "password"}}
	qs.Spec.Gateway.TrustedProxies = []string{"10.0.0.0/8"}
	qs.Spec.Exposure = &v1alpha1.ExposureSpec{Ingress: &v1alpha1.IngressExposure{
		ClassName: "nginx", Host: "qwen.example.com", TLSSecretName: "qwen-tls",
		Annotations: map[string]string{
			"cert-manager.io/cluster-issuer":                 "letsencrypt",
			"nginx.ingress.kubernetes.io/proxy-read-timeout": "1800",
			AnnotationLimitRPM:                               "999999",
		},
	}}
	return Inputs{Service: qs, Policy: apiKeyPolicy(), Plan: plan(2), Defaults: testDefaults}
}

// clientIPPolicy is the seed's policy in the daytime, accepted: base 30/min, schedule 50/min.
func clientIPPolicy() *v1alpha1.RateLimitPolicy {
	limits := func(rpm int32) v1alpha1.LimitSet {
		return v1alpha1.LimitSet{
			RequestsPerMinute: ptr.To(rpm), Burst: ptr.To(int32(10)),
			TokensPerMinute: ptr.To(int64(60000)), MaxConcurrentRequests: ptr.To(int32(8)),
		}
	}
	office := v1alpha1.LimitOverride{Name: "office", Keys: []string{"192.0.2.7", "198.51.100.0/24"}, Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To(int32(600))}}
	return &v1alpha1.RateLimitPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "qwen3-limits", Namespace: "ai", Generation: 2},
		Spec: v1alpha1.RateLimitPolicySpec{
			TargetRef:   v1alpha1.TargetRef{Name: "qwen3"},
			Mode:        v1alpha1.ModeEnforce,
			Key:         v1alpha1.KeySpec{Source: v1alpha1.KeyClientIP},
			Algorithm:   v1alpha1.AlgorithmHybrid,
			Limits:      limits(30),
			Overrides:   []v1alpha1.LimitOverride{office},
			FailureMode: v1alpha1.FailOpen,
		},
		Status: v1alpha1.RateLimitPolicyStatus{
			ObservedGeneration: 2,
			Conditions:         []metav1.Condition{{Type: v1alpha1.ConditionAccepted, Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: 2}},
			ActiveSchedule:     "daytime",
			AdaptiveScale:      "1",
			Effective: &v1alpha1.EffectivePolicy{
				Mode: v1alpha1.ModeEnforce, Key: v1alpha1.KeySpec{Source: v1alpha1.KeyClientIP},
				Algorithm: v1alpha1.AlgorithmHybrid, FailureMode: v1alpha1.FailOpen,
				Limits:    limits(50),
				Overrides: []v1alpha1.EffectiveOverride{{Name: office.Name, Keys: office.Keys, Limits: limits(600)}},
			},
		},
	}
}

// apiKeyPolicy limits per API key with a premium tier.
func apiKeyPolicy() *v1alpha1.RateLimitPolicy {
	p := clientIPPolicy()
	p.Spec.Key = v1alpha1.KeySpec{Source: v1alpha1.KeyAPIKey}
	p.Spec.FailureMode = v1alpha1.FailClosed
	p.Spec.Overrides = []v1alpha1.LimitOverride{{Name: "premium", Keys: []string{"team-a"}, Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To(int32(600)), Burst: ptr.To(int32(100))}}}
	e := p.Status.Effective
	e.Key, e.FailureMode = p.Spec.Key, p.Spec.FailureMode
	premium := *e.Limits.DeepCopy()
	premium.RequestsPerMinute, premium.Burst = ptr.To(int32(600)), ptr.To(int32(100))
	e.Overrides = []v1alpha1.EffectiveOverride{{Name: "premium", Keys: []string{"team-a"}, Limits: premium}}
	return p
}

// plan is the seed's DegradationPlan at level.
func plan(level int32) *v1alpha1.DegradationPlan {
	return &v1alpha1.DegradationPlan{
		ObjectMeta: metav1.ObjectMeta{Name: "qwen3-degrade", Namespace: "ai"},
		Spec: v1alpha1.DegradationPlanSpec{
			TargetRef:      v1alpha1.TargetRef{Name: "qwen3"},
			StaticResponse: v1alpha1.StaticResponse{Message: "服务繁忙，请稍后再试", HTTPStatus: 200},
			CircuitBreaker: v1alpha1.CircuitBreaker{FailureThreshold: 5, RecoveryTimeout: metav1.Duration{Duration: 30e9}, HalfOpenRequests: 1},
		},
		Status: v1alpha1.DegradationPlanStatus{Level: level},
	}
}

// minimalVLLM is the smallest QwenService: no fallback, exposure, policy, plan, Redis or keys.
func minimalVLLM() Inputs {
	return Inputs{Service: service(v1alpha1.EngineVLLM), Defaults: testDefaults}
}

// sglangRoute is SGLang behind an HTTPRoute with an Envoy Gateway rate limit, local gateway
// limiting split over 3 replicas, and an existing cache claim.
func sglangRoute() Inputs {
	qs := service(v1alpha1.EngineSGLang)
	qs.Spec.Model.MaxModelLen = ptr.To(int32(32768))
	qs.Spec.Engine.GPUMemoryUtilization = "0.85"
	qs.Spec.Engine.Image = "registry.example.com/sglang:custom"
	qs.Spec.Gateway.Replicas = ptr.To(int32(3))
	qs.Spec.Gateway.Image = "registry.example.com/qwen-gateway:v1"
	qs.Spec.ModelCache = &v1alpha1.ModelCacheSpec{ClaimName: "shared-models"}
	qs.Spec.Exposure = &v1alpha1.ExposureSpec{HTTPRoute: &v1alpha1.HTTPRouteExposure{
		ParentRefs: []v1alpha1.ParentRef{{Name: "public-gw", Namespace: "gateways", SectionName: "https"}},
		Hostnames:  []string{"qwen.example.com"},
	}}
	return Inputs{Service: qs, Policy: clientIPPolicy(), Defaults: testDefaults, HTTPRouteServed: true, BackendTrafficPolicyServed: true}
}

// simulatorBoth is the GPU-less demo: Simulator engine and fallback, Ingress and HTTPRoute
// (no BackendTrafficPolicy CRD), API keys without Redis, a Shadow policy, the plan at L4.
func simulatorBoth() Inputs {
	qs := service(v1alpha1.EngineSimulator)
	qs.Spec.Model.ServedName = "qwen3"
	qs.Spec.Model.Reasoning.Enabled = ptr.To(false)
	qs.Spec.Fallback = &v1alpha1.FallbackSpec{Model: v1alpha1.ModelSpec{Name: "Qwen/Qwen3-0.6B"}}
	qs.Spec.Gateway.APIKeysSecretRef = &v1alpha1.LocalObjectRef{Name: "qwen3-keys"}
	qs.Spec.Exposure = &v1alpha1.ExposureSpec{
		Ingress:   &v1alpha1.IngressExposure{Host: "qwen.local"},
		HTTPRoute: &v1alpha1.HTTPRouteExposure{ParentRefs: []v1alpha1.ParentRef{{Name: "demo-gw"}}},
	}
	p := apiKeyPolicy()
	p.Spec.Mode = v1alpha1.ModeShadow
	p.Status.Effective.Mode = v1alpha1.ModeShadow
	return Inputs{Service: qs, Policy: p, Plan: plan(4), Defaults: testDefaults, HTTPRouteServed: true}
}
