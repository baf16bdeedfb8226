package render

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

func TestServedName(t *testing.T) {
	tests := []struct{ name, served, want string }{
		{"Qwen/Qwen3-1.7B", "", "Qwen3-1.7B"},
		{"Qwen/Qwen3-1.7B", "qwen", "qwen"},
		{"Qwen3-0.6B", "", "Qwen3-0.6B"},
		{"/models/qwen3/", "", "qwen3"},
		{"org/team/Qwen3-8B-AWQ", "", "Qwen3-8B-AWQ"},
		{"/", "", "/"},
	}
	for _, tt := range tests {
		if got := ServedName(v1alpha1.ModelSpec{Name: tt.name, ServedName: tt.served}); got != tt.want {
			t.Errorf("ServedName(%q, %q) = %q, want %q", tt.name, tt.served, got, tt.want)
		}
	}
}

// TestEdgeLimits checks the annotation maths: per-IP rate, burst multiplier = ceil(burst/rpm)
// (>= 1, burst defaulting to rpm), connections, exemptions, and never stricter than the gateway.
func TestEdgeLimits(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	policy := func(src v1alpha1.KeySource, l v1alpha1.LimitSet, overrides ...v1alpha1.EffectiveOverride) *v1alpha1.EffectivePolicy {
		return &v1alpha1.EffectivePolicy{Mode: v1alpha1.ModeEnforce, Key: v1alpha1.KeySpec{Source: src}, Limits: l, Overrides: overrides}
	}
	tests := []struct {
		name   string
		policy *v1alpha1.EffectivePolicy
		want   map[string]string
		btpRPM int64
	}{
		{"no policy", nil, map[string]string{}, 0},
		{"seed 30/min burst 10", policy(v1alpha1.KeyClientIP, v1alpha1.LimitSet{RequestsPerMinute: i32(30), Burst: i32(10)}),
			map[string]string{AnnotationLimitRPM: "30", AnnotationLimitBurstMultiplier: "1"}, 30},
		{"burst defaults to rpm", policy(v1alpha1.KeyClientIP, v1alpha1.LimitSet{RequestsPerMinute: i32(200)}),
			map[string]string{AnnotationLimitRPM: "200", AnnotationLimitBurstMultiplier: "1"}, 200},
		{"burst above rpm rounds up", policy(v1alpha1.KeyClientIP, v1alpha1.LimitSet{RequestsPerMinute: i32(10), Burst: i32(25)}),
			map[string]string{AnnotationLimitRPM: "10", AnnotationLimitBurstMultiplier: "3"}, 10},
		{"exact multiple", policy(v1alpha1.KeyClientIP, v1alpha1.LimitSet{RequestsPerMinute: i32(10), Burst: i32(50)}),
			map[string]string{AnnotationLimitRPM: "10", AnnotationLimitBurstMultiplier: "5"}, 10},
		{"connections only", policy(v1alpha1.KeyClientIP, v1alpha1.LimitSet{MaxConcurrentRequests: i32(8)}),
			map[string]string{AnnotationLimitConnections: "8"}, 0},
		{"tokens only: nothing at the edge", policy(v1alpha1.KeyClientIP, v1alpha1.LimitSet{TokensPerMinute: ptr.To(int64(1000))}),
			map[string]string{}, 0},
		{"client IP tiers are exempt", policy(v1alpha1.KeyClientIP, v1alpha1.LimitSet{RequestsPerMinute: i32(30), MaxConcurrentRequests: i32(4)},
			v1alpha1.EffectiveOverride{Name: "office", Keys: []string{"198.51.100.9/24", "192.0.2.7"}, Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(600), MaxConcurrentRequests: i32(4)}},
			v1alpha1.EffectiveOverride{Name: "dup", Keys: []string{"192.0.2.7"}, Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(5), MaxConcurrentRequests: i32(4)}}),
			map[string]string{AnnotationLimitRPM: "30", AnnotationLimitBurstMultiplier: "1", AnnotationLimitConnections: "4",
				AnnotationLimitAllowlist: "192.0.2.7/32,198.51.100.0/24"}, 600},
		{"API key: per-IP ceiling is the largest tier", policy(v1alpha1.KeyAPIKey, v1alpha1.LimitSet{RequestsPerMinute: i32(30), Burst: i32(10), MaxConcurrentRequests: i32(4)},
			v1alpha1.EffectiveOverride{Name: "premium", Keys: []string{"team-a"}, Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(100), Burst: i32(250), MaxConcurrentRequests: i32(4)}}),
			map[string]string{AnnotationLimitRPM: "100", AnnotationLimitBurstMultiplier: "3", AnnotationLimitConnections: "4"}, 100},
		{"header key: a lower tier does not lower the edge", policy(v1alpha1.KeyHeader, v1alpha1.LimitSet{RequestsPerMinute: i32(60)},
			v1alpha1.EffectiveOverride{Name: "free", Keys: []string{"u1"}, Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(6)}}),
			map[string]string{AnnotationLimitRPM: "60", AnnotationLimitBurstMultiplier: "1"}, 60},
		{"shadow never rejects, so the edge must not either", &v1alpha1.EffectivePolicy{Mode: v1alpha1.ModeShadow,
			Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(30)}}, map[string]string{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Edge(tt.policy)
			if got := e.NginxAnnotations(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("annotations = %v, want %v", got, tt.want)
			}
			if got := e.CeilingRequestsPerMinute; got != tt.btpRPM {
				t.Errorf("ceiling rpm = %d, want %d", got, tt.btpRPM)
			}
		})
	}
}

// TestPolicyRenderedOnlyFromItsStatus: the renderer copies status.effective of an accepted
// policy whose status describes its current spec, and nothing else: not the spec, not a status
// that has not caught up with an edit, not a refused policy.
func TestPolicyRenderedOnlyFromItsStatus(t *testing.T) {
	rendered := func(p *v1alpha1.RateLimitPolicy) (config *gatewayconfig.RateLimit, annotations map[string]string, summary string) {
		in := input(t, "sglang-httproute")
		in.Service.Spec.Exposure.Ingress = &v1alpha1.IngressExposure{Host: "qwen.example.com"}
		in.Policy = p
		objs, err := Render(in)
		if err != nil {
			t.Fatal(err)
		}
		c, err := gatewayconfig.Load([]byte(configOf(t, objs)))
		if err != nil {
			t.Fatal(err)
		}
		return c.RateLimit, Edge(Enforced(p)).NginxAnnotations(), RateLimitSummary(p)
	}

	p := input(t, "sglang-httproute").Policy // spec 30/min, status 50/min (daytime)
	p.Spec.Key = v1alpha1.KeySpec{Source: v1alpha1.KeyHeader, Header: "X-User-Id"}
	p.Spec.Mode = v1alpha1.ModeShadow
	rl, ann, summary := rendered(p)
	if rl == nil || rl.Limits.RequestsPerMinute != 50 || rl.Key.Source != gatewayconfig.KeyClientIP || rl.Mode != gatewayconfig.ModeEnforce ||
		ann[AnnotationLimitRPM] != "50" || !strings.HasPrefix(summary, "50/min") {
		t.Fatalf("an accepted policy renders its status: config %+v, annotations %v, summary %q", rl, ann, summary)
	}

	for name, mutate := range map[string]func(*v1alpha1.RateLimitPolicy){
		"spec edited, status not caught up": func(p *v1alpha1.RateLimitPolicy) { p.Generation++ },
		"refused": func(p *v1alpha1.RateLimitPolicy) {
			p.Status.Conditions[0].Status, p.Status.Conditions[0].Reason = metav1.ConditionFalse, "UnknownTimezone"
		},
		"accepted at an older generation": func(p *v1alpha1.RateLimitPolicy) { p.Status.Conditions[0].ObservedGeneration-- },
		"no Accepted condition":           func(p *v1alpha1.RateLimitPolicy) { p.Status.Conditions = nil },
		"no effective policy":             func(p *v1alpha1.RateLimitPolicy) { p.Status.Effective = nil },
	} {
		p := input(t, "sglang-httproute").Policy
		mutate(p)
		if rl, ann, summary := rendered(p); rl != nil || len(ann) != 0 || summary != "" {
			t.Errorf("%s: rendered config %+v, annotations %v, summary %q; want no limits", name, rl, ann, summary)
		}
	}
}

func TestIngressAnnotationsOursWin(t *testing.T) {
	objs, err := Render(input(t, "vllm-full"))
	if err != nil {
		t.Fatal(err)
	}
	ann := find(t, objs, "Ingress", "qwen3").(*networkingv1.Ingress).Annotations
	for k, want := range map[string]string{
		AnnotationLimitRPM:                               "600", // the user's 999999 loses to the limit
		"cert-manager.io/cluster-issuer":                 "letsencrypt",
		"nginx.ingress.kubernetes.io/proxy-read-timeout": "1800", // the user's wins over our default
		"nginx.ingress.kubernetes.io/proxy-buffering":    "off",
	} {
		if ann[k] != want {
			t.Errorf("annotation %s = %q, want %q", k, ann[k], want)
		}
	}
}

func TestRateLimitSummary(t *testing.T) {
	p := input(t, "sglang-httproute").Policy
	if got, want := RateLimitSummary(p), "50/min burst 10, 60000 tokens/min, 8 concurrent (schedule: daytime)"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	p.Status.ActiveSchedule = ""
	p.Status.Effective.Limits = v1alpha1.LimitSet{RequestsPerMinute: ptr.To(int32(200)), Burst: ptr.To(int32(40))}
	p.Status.Effective.Mode = v1alpha1.ModeShadow
	if got, want := RateLimitSummary(p), "200/min burst 40 [shadow]"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	if got := RateLimitSummary(nil); got != "" {
		t.Errorf("summary without a policy = %q, want empty", got)
	}
}

func TestValidateReasons(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Inputs)
		reason string
		in     string // part of the message
	}{
		{"name too long", func(in *Inputs) { in.Service.Name = strings.Repeat("q", 55) }, ReasonInvalidName, "at most 54"},
		{"name with dots", func(in *Inputs) { in.Service.Name = "qwen3.prod" }, ReasonInvalidName, "DNS label"},
		{"missing secret", func(in *Inputs) {
			in.MissingSecrets = []SecretRef{{Name: "hf", Field: "spec.engine.hfTokenSecretRef"}}
		}, ReasonSecretNotFound, `Secret "hf" (spec.engine.hfTokenSecretRef)`},
		{"API key source without keys", func(in *Inputs) {
			in.Service.Spec.Gateway.APIKeysSecretRef = nil
		}, ReasonAPIKeysSecretRequired, "spec.gateway.apiKeysSecretRef"},
		{"HTTPRoute without Gateway API", func(in *Inputs) {
			in.Service.Spec.Exposure.HTTPRoute = &v1alpha1.HTTPRouteExposure{ParentRefs: []v1alpha1.ParentRef{{Name: "gw"}}}
		}, ReasonGatewayAPINotServed, "spec.exposure.httpRoute"},
		{"Redis cache without Redis", func(in *Inputs) {
			in.Service.Spec.Gateway.Redis = nil
		}, ReasonCacheNeedsRedis, "spec.cache.backend Redis"},
		{"shared pod with two GPUs", func(in *Inputs) {
			in.Service.Spec.Fallback.Placement = v1alpha1.FallbackSharedPod
		}, ReasonInvalidSharedPod, "spec.resources.gpus is 2"},
		{"shared pod over the GPU's memory", func(in *Inputs) {
			in.Service.Spec.Fallback.Placement = v1alpha1.FallbackSharedPod
			in.Service.Spec.Resources.GPUs = ptr.To(int32(1))
		}, ReasonInvalidSharedPod, "spec.engine.gpuMemoryUtilization 0.90 + spec.fallback.gpuMemoryUtilization 0.3 = 1.20"},
		{"shared pod on the engine's port", func(in *Inputs) {
			in.Service.Spec.Fallback.Placement = v1alpha1.FallbackSharedPod
			in.Service.Spec.Resources.GPUs = ptr.To(int32(1))
			in.Service.Spec.Engine.GPUMemoryUtilization = "0.6"
			in.Service.Spec.Fallback.Port = 8000
		}, ReasonInvalidSharedPod, "spec.fallback.port 8000 is spec.engine.port"},
		{"override keys not IPs for a ClientIP policy", func(in *Inputs) {
			in.Policy.Status.Effective.Key.Source = v1alpha1.KeyClientIP
		}, ReasonInvalidGatewayConfig, "rateLimit.overrides[0].keys[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(t, "vllm-full")
			tt.mutate(&in)
			objs, err := Render(in)
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Reason != tt.reason || !strings.Contains(ie.Message, tt.in) {
				t.Fatalf("err = %v, want reason %s mentioning %q", err, tt.reason, tt.in)
			}
			if objs != nil {
				t.Errorf("an invalid spec rendered %d objects", len(objs))
			}
		})
	}
}

func TestSecretRefs(t *testing.T) {
	got := SecretRefs(input(t, "vllm-full").Service)
	want := []SecretRef{
		{"hf", "spec.engine.hfTokenSecretRef"},
		{"qwen3-keys", "spec.gateway.apiKeysSecretRef"},
		{"redis", "spec.gateway.redis.passwordSecretRef"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SecretRefs = %v, want %v", got, want)
	}
	if got := SecretRefs(input(t, "vllm-minimal").Service); len(got) != 0 {
		t.Errorf("minimal service references %v", got)
	}
}

func TestGPUs(t *testing.T) {
	for _, tt := range []struct {
		engine v1alpha1.EngineType
		set    *int32
		want   int32
	}{
		{"", nil, 1}, {v1alpha1.EngineVLLM, nil, 1}, {v1alpha1.EngineSGLang, nil, 1},
		{v1alpha1.EngineSimulator, nil, 0}, {v1alpha1.EngineSimulator, ptr.To(int32(1)), 1}, {v1alpha1.EngineVLLM, ptr.To(int32(0)), 0},
	} {
		if got := GPUs(v1alpha1.EngineSpec{Type: tt.engine}, v1alpha1.ResourcesSpec{GPUs: tt.set}); got != tt.want {
			t.Errorf("GPUs(%q, %v) = %d, want %d", tt.engine, tt.set, got, tt.want)
		}
	}
}

func TestSimulatorHasNoGPUAndDefaultGPUName(t *testing.T) {
	objs, _ := Render(input(t, "simulator-exposed"))
	c := find(t, objs, "Deployment", "qwen3-engine").(*appsv1.Deployment).Spec.Template.Spec.Containers[0]
	if len(c.Resources.Limits) != 0 {
		t.Errorf("simulator limits = %v, want no GPU", c.Resources.Limits)
	}
	in := input(t, "vllm-minimal")
	in.Service.Spec.Resources.GPUResourceName = ""
	objs, _ = Render(in)
	c = find(t, objs, "Deployment", "qwen3-engine").(*appsv1.Deployment).Spec.Template.Spec.Containers[0]
	if q := c.Resources.Limits["nvidia.com/gpu"]; q.Value() != 1 {
		t.Errorf("limits = %v, want nvidia.com/gpu: 1", c.Resources.Limits)
	}
}

func TestFallbackTakesUnsetResourcesFromPrimary(t *testing.T) {
	in := input(t, "vllm-full")
	in.Service.Spec.Fallback.Resources = v1alpha1.ResourcesSpec{GPUs: ptr.To(int32(1)), NodeSelector: map[string]string{"pool": "small"}}
	objs, _ := Render(in)
	pod := find(t, objs, "Deployment", "qwen3-fallback").(*appsv1.Deployment).Spec.Template.Spec
	if pod.NodeSelector["pool"] != "small" || len(pod.NodeSelector) != 1 {
		t.Errorf("fallback nodeSelector = %v, want its own", pod.NodeSelector)
	}
	if len(pod.Tolerations) != 1 || ptr.Deref(pod.RuntimeClassName, "") != "nvidia" {
		t.Errorf("fallback tolerations/runtimeClass = %v/%v, want the primary's", pod.Tolerations, pod.RuntimeClassName)
	}
	if cpu := pod.Containers[0].Resources.Requests[corev1.ResourceCPU]; cpu.String() != "4" {
		t.Errorf("fallback cpu request = %v, want the primary's 4", cpu.String())
	}
}

func TestUserEnvReplacesOurs(t *testing.T) {
	in := input(t, "vllm-full")
	in.Service.Spec.Engine.Env = []corev1.EnvVar{{Name: "HF_TOKEN", Value: "inline"}, {Name: "A", Value: "1"}, {Name: "A", Value: "2"}}
	objs, _ := Render(in)
	env := find(t, objs, "Deployment", "qwen3-engine").(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Env
	want := []corev1.EnvVar{{Name: "HF_TOKEN", Value: "inline"}, {Name: "A", Value: "2"}}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env = %v, want %v (unique names, last wins)", env, want)
	}
}

func TestBackendTrafficPolicyOnlyWhenServed(t *testing.T) {
	in := input(t, "sglang-httproute")
	objs, _ := Render(in)
	if !has(objs, BackendTrafficPolicyKind, "qwen3") {
		t.Fatal("no BackendTrafficPolicy although the CRD is served")
	}
	in.BackendTrafficPolicyServed = false
	objs, _ = Render(in)
	if has(objs, BackendTrafficPolicyKind, "qwen3") || !has(objs, "HTTPRoute", "qwen3") {
		t.Error("want the HTTPRoute without a BackendTrafficPolicy when the CRD is not served")
	}
	in = input(t, "sglang-httproute")
	in.Policy = nil
	objs, _ = Render(in)
	btp := find(t, objs, BackendTrafficPolicyKind, "qwen3").(*unstructured.Unstructured)
	if _, limited, _ := unstructured.NestedMap(btp.Object, "spec", "rateLimit"); limited {
		t.Error("a BackendTrafficPolicy rate limit without a policy")
	}
	if timeout, _, _ := unstructured.NestedString(btp.Object, "spec", "timeout", "http", "requestTimeout"); timeout != "30m" {
		t.Errorf("BackendTrafficPolicy requestTimeout %q without a policy, want the route's 30m", timeout)
	}
}

// TestRouteTimeouts checks the HTTPRoute's timeouts and the BackendTrafficPolicy's matching
// requestTimeout: the 10m default (Envoy Gateway's own is 15s), the spec's, and either one
// filled from the other.
func TestRouteTimeouts(t *testing.T) {
	for _, tt := range []struct {
		set                   *v1alpha1.HTTPRouteTimeouts
		request, backend, btp string
	}{
		{nil, "10m", "10m", "10m"},
		{&v1alpha1.HTTPRouteTimeouts{Request: "1h", BackendRequest: "50m"}, "1h", "50m", "1h"},
		{&v1alpha1.HTTPRouteTimeouts{Request: "30m"}, "30m", "30m", "30m"},
		{&v1alpha1.HTTPRouteTimeouts{BackendRequest: "20m"}, "20m", "20m", "20m"},
		{&v1alpha1.HTTPRouteTimeouts{Request: "0s", BackendRequest: "0s"}, "0s", "0s", "0s"},
	} {
		in := input(t, "exposure-httproute")
		in.Service.Spec.Exposure.HTTPRoute.Timeouts = tt.set
		objs, err := Render(in)
		if err != nil {
			t.Fatal(err)
		}
		rt := find(t, objs, "HTTPRoute", "qwen3").(*gatewayv1.HTTPRoute).Spec.Rules[0].Timeouts
		btp, _, _ := unstructured.NestedString(find(t, objs, BackendTrafficPolicyKind, "qwen3").(*unstructured.Unstructured).Object,
			"spec", "timeout", "http", "requestTimeout")
		if rt == nil || string(*rt.Request) != tt.request || string(*rt.BackendRequest) != tt.backend || btp != tt.btp {
			t.Errorf("timeouts %+v: route %+v, BackendTrafficPolicy %q; want %s/%s and %s", tt.set, rt, btp, tt.request, tt.backend, tt.btp)
		}
	}
}

// TestToolCallingArgs checks the tool-call flags each engine gets for Qwen3, a parser of the
// spec's choice, none when off, and that engine.args still come last.
func TestToolCallingArgs(t *testing.T) {
	model := v1alpha1.ModelSpec{Name: "Qwen/Qwen3-1.7B"}
	for _, tt := range []struct {
		engine  v1alpha1.EngineType
		tools   v1alpha1.ToolCallingSpec
		want    string
		without string
	}{
		{v1alpha1.EngineVLLM, v1alpha1.ToolCallingSpec{}, "--enable-auto-tool-choice --tool-call-parser hermes", ""},
		{v1alpha1.EngineVLLM, v1alpha1.ToolCallingSpec{Parser: "qwen3_coder"}, "--enable-auto-tool-choice --tool-call-parser qwen3_coder", ""},
		{v1alpha1.EngineVLLM, v1alpha1.ToolCallingSpec{Enabled: ptr.To(false)}, "", "tool"},
		{v1alpha1.EngineSGLang, v1alpha1.ToolCallingSpec{}, "--tool-call-parser qwen25", "--enable-auto-tool-choice"},
		{v1alpha1.EngineSGLang, v1alpha1.ToolCallingSpec{Enabled: ptr.To(false)}, "", "tool"},
		{v1alpha1.EngineSimulator, v1alpha1.ToolCallingSpec{}, "", "tool"},
	} {
		m := model
		m.ToolCalling = tt.tools
		_, args := engineCommand(v1alpha1.EngineSpec{Type: tt.engine, Args: []string{"--tool-call-parser", "mine"}}, m, 8000, 1)
		line := strings.Join(args, " ")
		if !strings.HasSuffix(line, "--tool-call-parser mine") || !strings.Contains(line, tt.want) ||
			(tt.without != "" && strings.Contains(strings.TrimSuffix(line, "--tool-call-parser mine"), tt.without)) {
			t.Errorf("%s %+v: args %q, want %q (and not %q) before the user's", tt.engine, tt.tools, line, tt.want, tt.without)
		}
	}
}

func TestLevelAndPlanInGatewayConfig(t *testing.T) {
	in := input(t, "vllm-minimal")
	if c := GatewayConfig(in); c.Degradation.Level != 0 || c.Degradation.StaticResponse != nil || c.RateLimit != nil || c.Fallback != nil {
		t.Errorf("minimal config carries policy or plan settings: %+v", c)
	}
	in.Plan = input(t, "vllm-full").Plan
	in.Plan.Status.Level = 3
	c := GatewayConfig(in)
	if c.Degradation.Level != 3 || c.Degradation.StaticResponse.Message != "服务繁忙，请稍后再试" || c.Breaker.FailureThreshold != 5 {
		t.Errorf("plan not rendered: %+v", c.Degradation)
	}
}

func TestEndpointAndURL(t *testing.T) {
	qs := input(t, "vllm-full").Service
	if got, want := Endpoint(qs), "http://qwen3-gateway.ai.svc:8080/v1"; got != want {
		t.Errorf("Endpoint = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		x    *v1alpha1.ExposureSpec
		want string
	}{
		{nil, ""},
		{&v1alpha1.ExposureSpec{Ingress: &v1alpha1.IngressExposure{Host: "q.example.com", TLSSecretName: "t"}}, "https://q.example.com/v1"},
		{&v1alpha1.ExposureSpec{Ingress: &v1alpha1.IngressExposure{Host: "q.example.com"}}, "http://q.example.com/v1"},
		{&v1alpha1.ExposureSpec{HTTPRoute: &v1alpha1.HTTPRouteExposure{Hostnames: []string{"*.example.com", "q.example.com"}}}, "http://q.example.com/v1"},
		{&v1alpha1.ExposureSpec{HTTPRoute: &v1alpha1.HTTPRouteExposure{}}, ""},
	} {
		qs.Spec.Exposure = tt.x
		if got := URL(qs); got != tt.want {
			t.Errorf("URL(%+v) = %q, want %q", tt.x, got, tt.want)
		}
	}
}

// TestClassesRendered: the policy's classes (from its status) and the plan's class levels
// reach the gateway config.
func TestClassesRendered(t *testing.T) {
	in := input(t, "vllm-full")
	if in.Plan == nil || in.Policy == nil {
		t.Fatal("vllm-full has no plan or policy")
	}
	in.Plan.Spec.Classes = v1alpha1.ClassLevels{CriticalMaxLevel: ptr.To[int32](1), SheddableStepsAhead: ptr.To[int32](2)}
	e := in.Policy.Status.Effective
	e.Criticality, e.CriticalityHeader = v1alpha1.CriticalitySheddable, "X-Qwen-Criticality"
	c := GatewayConfig(in)
	if d := c.Degradation; d.CriticalMaxLevel == nil || *d.CriticalMaxLevel != 1 || d.SheddableStepsAhead == nil || *d.SheddableStepsAhead != 2 {
		t.Errorf("degradation %+v", d)
	}
	if rl := c.RateLimit; rl == nil || rl.Criticality != gatewayconfig.Sheddable || rl.CriticalityHeader != "X-Qwen-Criticality" {
		t.Errorf("rate limit %+v", rl)
	}
}
