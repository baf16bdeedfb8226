package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

// qwen3 is the seed's service: Qwen/Qwen3-1.7B on vLLM behind ingress-nginx.
func qwen3(ns string) *v1alpha1.QwenService {
	return &v1alpha1.QwenService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qwen3"},
		Spec: v1alpha1.QwenServiceSpec{
			Model:  v1alpha1.ModelSpec{Name: "Qwen/Qwen3-1.7B", MaxModelLen: ptr.To(int32(8192))},
			Engine: v1alpha1.EngineSpec{GPUMemoryUtilization: "0.90"},
			Resources: v1alpha1.ResourcesSpec{
				GPUs:     ptr.To(int32(1)),
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi")},
			},
			Exposure: &v1alpha1.ExposureSpec{Ingress: &v1alpha1.IngressExposure{ClassName: "nginx", Host: "qwen.example.com"}},
		},
	}
}

func limitsPolicy(ns, name string, rpm int32) *v1alpha1.RateLimitPolicy {
	return &v1alpha1.RateLimitPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.RateLimitPolicySpec{
			TargetRef: v1alpha1.TargetRef{Name: "qwen3"},
			Limits:    v1alpha1.LimitSet{RequestsPerMinute: ptr.To(rpm), Burst: ptr.To(int32(10))},
		},
	}
}

// createAccepted creates a policy and writes the status its controller would write now (its
// target present, no conflict): the QwenService tests run without the RateLimitPolicy
// controller, and the QwenService renders a policy only from an accepted, current status.
func createAccepted(t testing.TB, p *v1alpha1.RateLimitPolicy) {
	t.Helper()
	create(t, p)
	updateStatus(t, p, func(p *v1alpha1.RateLimitPolicy) {
		p.Status, _ = policyStatus(policyInputs{policy: p, targetExists: true, now: time.Now()})
	})
}

func degradePlan(ns string) *v1alpha1.DegradationPlan {
	return &v1alpha1.DegradationPlan{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qwen3-degrade"},
		Spec: v1alpha1.DegradationPlanSpec{
			TargetRef:      v1alpha1.TargetRef{Name: "qwen3"},
			Levels:         []v1alpha1.DegradationLevel{{Level: 2, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalGPUTemperature, Above: "83"}}}},
			StaticResponse: v1alpha1.StaticResponse{Message: "服务繁忙，请稍后再试"},
		},
	}
}

// TestCreateRendersEveryChild creates a service using every section and checks that every
// rendered child exists with every rendered field, owned by the service, and the status.
func TestCreateRendersEveryChild(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, secret(ns, "hf", map[string]string{"token": "hf_x"}))
	create(t, secret(ns, "qwen3-keys", map[string]string{"team-a": "sk-a"}))
	create(t, secret(ns, "redis", map[string]string{"password": "p"}))
	createAccepted(t, limitsPolicy(ns, "qwen3-limits", 30))
	create(t, degradePlan(ns))
	qs := qwen3(ns)
	qs.Spec.Engine.HFTokenSecretRef = &v1alpha1.SecretKeyRef{Name: "hf"}
	qs.Spec.ModelCache = &v1alpha1.ModelCacheSpec{Size: ptr.To(resource.MustParse("20Gi"))}
	qs.Spec.Fallback = &v1alpha1.FallbackSpec{Model: v1alpha1.ModelSpec{Name: "Qwen/Qwen3-0.6B"}}
	qs.Spec.Gateway.APIKeysSecretRef = &v1alpha1.LocalObjectRef{Name: "qwen3-keys"}
	qs.Spec.Gateway.Redis = &v1alpha1.RedisSpec{Address: "redis.ai:6379", PasswordSecretRef: &v1alpha1.SecretKeyRef{Name: "redis", Key: "password"}}
	qs.Spec.Exposure.HTTPRoute = &v1alpha1.HTTPRouteExposure{ParentRefs: []v1alpha1.ParentRef{{Name: "public-gw"}}, Hostnames: []string{"qwen.example.com"}}
	create(t, qs)

	eventually(t, "every child rendered", func() error {
		return matchesRender(t, inputsOf(t, ns, "qwen3", "qwen3-limits", "qwen3-degrade"))
	})
	other := inputsOf(t, ns, "qwen3", "qwen3-limits", "qwen3-degrade")
	other.Defaults.VLLMImage = "vllm/vllm-openai:other"
	if err := matchesRender(t, other); err == nil || !strings.Contains(err.Error(), "image") {
		t.Errorf("the comparison accepts another image: %v", err)
	}
	qs = getQS(t, ns, "qwen3")
	for _, k := range [][2]string{
		{"apps/v1", "Deployment"}, {"v1", "Service"}, {"v1", "ConfigMap"}, {"v1", "ServiceAccount"}, {"v1", "PersistentVolumeClaim"},
		{"rbac.authorization.k8s.io/v1", "Role"}, {"rbac.authorization.k8s.io/v1", "RoleBinding"}, {"policy/v1", "PodDisruptionBudget"},
		{"networking.k8s.io/v1", "Ingress"}, {"gateway.networking.k8s.io/v1", "HTTPRoute"},
	} {
		for _, name := range []string{"qwen3-engine", "qwen3-fallback", "qwen3-gateway", "qwen3-cache", "qwen3"} {
			u := live(t, k[0], k[1], ns, name)
			if u == nil {
				continue
			}
			owner := metav1.GetControllerOf(u)
			if owner == nil || owner.UID != qs.UID || owner.Kind != "QwenService" || !ptr.Deref(owner.BlockOwnerDeletion, false) {
				t.Errorf("%s %s: controller reference %+v, want the QwenService %s", k[1], name, owner, qs.UID)
			}
		}
	}
	// A few fields spelled out, beyond the render comparison.
	d := live(t, "apps/v1", "Deployment", ns, "qwen3-engine")
	c := d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	if got := fmt.Sprint(c["args"]); got != "[--model Qwen/Qwen3-1.7B --served-model-name Qwen3-1.7B --port 8000 --max-model-len 8192 --gpu-memory-utilization 0.90 --reasoning-parser qwen3 --enable-auto-tool-choice --tool-call-parser hermes]" {
		t.Errorf("engine args = %s", got)
	}
	if got := c["resources"].(map[string]any)["limits"].(map[string]any)["nvidia.com/gpu"]; got != "1" {
		t.Errorf("engine GPU limit = %v, want 1", got)
	}
	if cfg := configOf(t, ns, "qwen3"); !strings.Contains(cfg, "requestsPerMinute: 30") || !strings.Contains(cfg, "address: redis.ai:6379") ||
		!strings.Contains(cfg, "url: http://qwen3-fallback."+ns+".svc:8000") {
		t.Errorf("gateway config lacks the limit, Redis or fallback:\n%s", cfg)
	}

	qs = waitCondition(t, ns, "qwen3", v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonEngineUnavailable)
	st := qs.Status
	if st.ServedModel != "Qwen3-1.7B" || st.Endpoint != "http://qwen3-gateway."+ns+".svc:8080/v1" || st.URL != "http://qwen.example.com/v1" ||
		st.RateLimit != "30/min burst 10" || st.DegradationLevel != 0 {
		t.Errorf("status = %+v", st)
	}
}

// TestSpecUpdatesReachChildren changes replicas, model, image and the exposure kind, then
// removes the fallback and the cache: children follow or are deleted.
func TestSpecUpdatesReachChildren(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	qs := qwen3(ns)
	qs.Spec.Fallback = &v1alpha1.FallbackSpec{Model: v1alpha1.ModelSpec{Name: "Qwen/Qwen3-0.6B"}}
	qs.Spec.ModelCache = &v1alpha1.ModelCacheSpec{Size: ptr.To(resource.MustParse("20Gi"))}
	create(t, qs)
	eventually(t, "children", func() error { return matchesRender(t, inputsOf(t, ns, "qwen3", "", "")) })

	update(t, qs, func(q *v1alpha1.QwenService) {
		q.Spec.Replicas = ptr.To(int32(3))
		q.Spec.Model.Name = "Qwen/Qwen3-4B"
		q.Spec.Engine.Image = "vllm/vllm-openai:v0.12.0"
	})
	waitField(t, "apps/v1", "Deployment", ns, "qwen3-engine", int64(3), "spec", "replicas")
	eventually(t, "model and image", func() error { return matchesRender(t, inputsOf(t, ns, "qwen3", "", "")) })
	if cfg := configOf(t, ns, "qwen3"); !strings.Contains(cfg, "model: Qwen3-4B") {
		t.Errorf("gateway config still serves the old model:\n%s", cfg)
	}

	update(t, qs, func(q *v1alpha1.QwenService) {
		q.Spec.Exposure = &v1alpha1.ExposureSpec{HTTPRoute: &v1alpha1.HTTPRouteExposure{ParentRefs: []v1alpha1.ParentRef{{Name: "public-gw"}}}}
	})
	waitGone(t, "networking.k8s.io/v1", "Ingress", ns, "qwen3")
	eventually(t, "HTTPRoute", func() error { return matchesRender(t, inputsOf(t, ns, "qwen3", "", "")) })

	update(t, qs, func(q *v1alpha1.QwenService) {
		q.Spec.Fallback = nil
		q.Spec.ModelCache = nil
		q.Spec.Exposure = nil
	})
	waitGone(t, "apps/v1", "Deployment", ns, "qwen3-fallback")
	waitGone(t, "v1", "Service", ns, "qwen3-fallback")
	waitGone(t, "v1", "PersistentVolumeClaim", ns, "qwen3-cache")
	waitGone(t, "gateway.networking.k8s.io/v1", "HTTPRoute", ns, "qwen3")
	eventually(t, "children without fallback", func() error { return matchesRender(t, inputsOf(t, ns, "qwen3", "", "")) })
	if cfg := configOf(t, ns, "qwen3"); strings.Contains(cfg, "fallback") {
		t.Errorf("gateway config still has a fallback:\n%s", cfg)
	}
	if v := live(t, "apps/v1", "Deployment", ns, "qwen3-engine"); v == nil {
		t.Error("the engine went away with the fallback")
	}
}

// TestHandEditsAreRestored edits the engine Deployment by hand and deletes the gateway
// Service: the controller puts both back.
func TestHandEditsAreRestored(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, qwen3(ns))
	eventually(t, "children", func() error { return matchesRender(t, inputsOf(t, ns, "qwen3", "", "")) })

	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qwen3-engine"}}
	update(t, d, func(d *appsv1.Deployment) {
		d.Spec.Replicas = ptr.To(int32(7))
		d.Spec.Template.Spec.Containers[0].Image = "attacker/vllm:latest"
		d.Spec.Template.Spec.Containers[0].Args = []string{"--model", "other"}
	})
	if err := env.Client.Delete(context.Background(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qwen3-gateway"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hand edits undone", func() error { return matchesRender(t, inputsOf(t, ns, "qwen3", "", "")) })
}

// TestConditionsFollowDeployments plays the Deployment controller and watches Ready,
// EngineAvailable, GatewayAvailable, FallbackAvailable, the replica counts and the Events.
func TestConditionsFollowDeployments(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	qs := qwen3(ns)
	qs.Spec.Replicas = ptr.To(int32(2))
	create(t, qs)
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonEngineUnavailable)
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionFallbackAvailable, metav1.ConditionFalse, ReasonNotConfigured)
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonNoPlan)

	setAvailable(t, ns, "qwen3-engine", true)
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionEngineAvailable, metav1.ConditionTrue, "MinimumReplicasAvailable")
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonGatewayUnavailable)
	setAvailable(t, ns, "qwen3-gateway", true)
	got := waitCondition(t, ns, "qwen3", v1alpha1.ConditionReady, metav1.ConditionTrue, ReasonAvailable)
	if got.Status.Replicas != 2 || got.Status.ReadyReplicas != 2 {
		t.Errorf("replicas %d ready %d, want 2 and 2", got.Status.Replicas, got.Status.ReadyReplicas)
	}
	waitEvent(t, ns, "qwen3", "Ready")

	setAvailable(t, ns, "qwen3-engine", false)
	got = waitCondition(t, ns, "qwen3", v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonEngineUnavailable)
	if got.Status.ReadyReplicas != 0 {
		t.Errorf("readyReplicas = %d, want 0", got.Status.ReadyReplicas)
	}
	waitEvent(t, ns, "qwen3", "NotReady")

	// Once settled, a reconcile writes nothing: no status patch, no child changed.
	eventually(t, "a reconcile that changes nothing", func() error {
		before := getQS(t, ns, "qwen3").ResourceVersion
		engine := live(t, "apps/v1", "Deployment", ns, "qwen3-engine").GetResourceVersion()
		cm := live(t, "v1", "ConfigMap", ns, "qwen3-gateway").GetResourceVersion()
		if _, err := reconciler.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(qs)}); err != nil {
			return err
		}
		if after := getQS(t, ns, "qwen3").ResourceVersion; after != before {
			return fmt.Errorf("QwenService resourceVersion %s -> %s", before, after)
		}
		if after := live(t, "apps/v1", "Deployment", ns, "qwen3-engine").GetResourceVersion(); after != engine {
			return fmt.Errorf("engine Deployment resourceVersion %s -> %s", engine, after)
		}
		if after := live(t, "v1", "ConfigMap", ns, "qwen3-gateway").GetResourceVersion(); after != cm {
			return fmt.Errorf("ConfigMap resourceVersion %s -> %s", cm, after)
		}
		return nil
	})
}

// TestPolicyStatusRerenders changes the policy's effective limits as its controller would:
// the gateway config, the Ingress annotations and the status summary follow. Removing the
// policy removes the limits.
func TestPolicyStatusRerenders(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	p := limitsPolicy(ns, "qwen3-limits", 30)
	createAccepted(t, p)
	create(t, qwen3(ns))
	waitField(t, "networking.k8s.io/v1", "Ingress", ns, "qwen3", "30", "metadata", "annotations", render.AnnotationLimitRPM)

	updateStatus(t, p, func(p *v1alpha1.RateLimitPolicy) {
		p.Status.ActiveSchedule = "night"
		p.Status.Effective.Limits = v1alpha1.LimitSet{RequestsPerMinute: ptr.To(int32(200)), Burst: ptr.To(int32(40))}
	})
	waitField(t, "networking.k8s.io/v1", "Ingress", ns, "qwen3", "200", "metadata", "annotations", render.AnnotationLimitRPM)
	eventually(t, "config and summary", func() error {
		if cfg := configOf(t, ns, "qwen3"); !strings.Contains(cfg, "requestsPerMinute: 200") || !strings.Contains(cfg, "activeSchedule: night") {
			return fmt.Errorf("config:\n%s", cfg)
		}
		if s := getQS(t, ns, "qwen3").Status.RateLimit; s != "200/min burst 40 (schedule: night)" {
			return fmt.Errorf("status.rateLimit = %q", s)
		}
		return nil
	})

	if err := env.Client.Delete(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	waitField(t, "networking.k8s.io/v1", "Ingress", ns, "qwen3", nil, "metadata", "annotations", render.AnnotationLimitRPM)
	eventually(t, "limits removed", func() error {
		if cfg := configOf(t, ns, "qwen3"); strings.Contains(cfg, "rateLimit") {
			return fmt.Errorf("config still limits:\n%s", cfg)
		}
		return nil
	})
}

// TestOlderPolicyWins puts two policies on one service: the older is rendered until it is
// deleted.
func TestOlderPolicyWins(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	older := limitsPolicy(ns, "b-older", 30)
	createAccepted(t, older)
	eventually(t, "distinct creation seconds", func() error { // creationTimestamp has 1 s resolution
		if time.Since(older.CreationTimestamp.Time) < time.Second {
			return fmt.Errorf("same second")
		}
		return nil
	})
	createAccepted(t, limitsPolicy(ns, "a-newer", 99))
	create(t, qwen3(ns))
	waitField(t, "networking.k8s.io/v1", "Ingress", ns, "qwen3", "30", "metadata", "annotations", render.AnnotationLimitRPM)
	if err := env.Client.Delete(context.Background(), older); err != nil {
		t.Fatal(err)
	}
	waitField(t, "networking.k8s.io/v1", "Ingress", ns, "qwen3", "99", "metadata", "annotations", render.AnnotationLimitRPM)
}

// TestPlanLevelRerenders moves the plan's level as its controller would: the gateway config,
// status.degradationLevel, the Degraded condition and an Event follow.
func TestPlanLevelRerenders(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	plan := degradePlan(ns)
	create(t, plan)
	create(t, qwen3(ns))
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonNormal)

	updateStatus(t, plan, func(p *v1alpha1.DegradationPlan) {
		p.Status.Level = 2
		p.Status.Reasons = []string{"GPUTemperature=86.0 > 83 for 1m (L2)"}
	})
	qs := waitCondition(t, ns, "qwen3", v1alpha1.ConditionDegraded, metav1.ConditionTrue, "DisableThinking")
	if qs.Status.DegradationLevel != 2 {
		t.Errorf("degradationLevel = %d, want 2", qs.Status.DegradationLevel)
	}
	if c := conditionOf(qs, v1alpha1.ConditionDegraded); !strings.Contains(c.Message, "GPUTemperature=86.0") {
		t.Errorf("Degraded message %q lacks the plan's reason", c.Message)
	}
	eventually(t, "config at level 2", func() error {
		if cfg := configOf(t, ns, "qwen3"); !strings.Contains(cfg, "level: 2") {
			return fmt.Errorf("config:\n%s", cfg)
		}
		return nil
	})
	waitEvent(t, ns, "qwen3", "DegradationLevelChanged")

	updateStatus(t, plan, func(p *v1alpha1.DegradationPlan) { p.Status.Level = 3 })
	qs = waitCondition(t, ns, "qwen3", v1alpha1.ConditionDegraded, metav1.ConditionTrue, "FallbackModel")
	if c := conditionOf(qs, v1alpha1.ConditionDegraded); !strings.Contains(c.Message, "acts as level 2") {
		t.Errorf("Degraded message %q does not say level 3 acts as level 2 without a fallback", c.Message)
	}
}

// TestMissingSecretRecovers references a Secret that does not exist: Ready=False names it,
// nothing is rendered and Reconcile asks for no retry; creating the Secret recovers.
func TestMissingSecretRecovers(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	qs := qwen3(ns)
	qs.Spec.Engine.HFTokenSecretRef = &v1alpha1.SecretKeyRef{Name: "hf"}
	create(t, qs)
	got := waitCondition(t, ns, "qwen3", v1alpha1.ConditionReady, metav1.ConditionFalse, render.ReasonSecretNotFound)
	if c := conditionOf(got, v1alpha1.ConditionReady); !strings.Contains(c.Message, `Secret "hf" (spec.engine.hfTokenSecretRef)`) {
		t.Errorf("Ready message %q does not name the Secret and field", c.Message)
	}
	if live(t, "apps/v1", "Deployment", ns, "qwen3-engine") != nil {
		t.Error("the engine was rendered without its Secret")
	}
	waitEvent(t, ns, "qwen3", render.ReasonSecretNotFound)
	res, err := reconciler.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(qs)})
	if err != nil || res != (ctrl.Result{}) {
		t.Errorf("Reconcile = %+v, %v; want no error and no requeue (the Secret watch brings it back)", res, err)
	}

	create(t, secret(ns, "hf", map[string]string{"token": "hf_x"}))
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonEngineUnavailable)
	eventually(t, "children after the Secret", func() error { return matchesRender(t, inputsOf(t, ns, "qwen3", "", "")) })
}

// TestAPIKeyPolicyNeedsKeys limits per API key without an API keys Secret: Ready=False with
// the reason, until the service names one.
func TestAPIKeyPolicyNeedsKeys(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	p := limitsPolicy(ns, "qwen3-limits", 30)
	p.Spec.Key = v1alpha1.KeySpec{Source: v1alpha1.KeyAPIKey}
	createAccepted(t, p)
	create(t, qwen3(ns))
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionReady, metav1.ConditionFalse, render.ReasonAPIKeysSecretRequired)

	create(t, secret(ns, "keys", map[string]string{"team-a": "sk-a"}))
	update(t, &v1alpha1.QwenService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qwen3"}}, func(q *v1alpha1.QwenService) {
		q.Spec.Gateway.APIKeysSecretRef = &v1alpha1.LocalObjectRef{Name: "keys"}
	})
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonEngineUnavailable)
	eventually(t, "children", func() error { return matchesRender(t, inputsOf(t, ns, "qwen3", "qwen3-limits", "")) })
}

func conditionOf(qs *v1alpha1.QwenService, typ string) metav1.Condition {
	for _, c := range qs.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

// fallbackSlice plays the EndpointSlice controller for the fallback Service: one slice, with
// the Service's labels copied as that controller does, holding one endpoint of the given
// readiness.
func fallbackSlice(t testing.TB, ns string, ready bool) {
	t.Helper()
	svc := &corev1.Service{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "qwen3-fallback"}, svc); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}
	for k, v := range svc.Labels {
		labels[k] = v
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "qwen3-fallback-abcde", Labels: labels},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8000))}},
	}
	cur := &discoveryv1.EndpointSlice{}
	switch err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(es), cur); {
	case apierrors.IsNotFound(err):
		create(t, es)
	case err != nil:
		t.Fatal(err)
	default:
		update(t, cur, func(c *discoveryv1.EndpointSlice) { c.Endpoints = es.Endpoints })
	}
}

// TestFallbackWithoutReadyEndpointsIsUnavailable: while the fallback Service has no ready
// endpoint, the gateway config marks the fallback unavailable and FallbackAvailable is False
// (NoReadyEndpoints once its Deployment reports available); a ready endpoint lifts both, and
// an endpoint turning unready brings them back.
func TestFallbackWithoutReadyEndpointsIsUnavailable(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	qs := qwen3(ns)
	qs.Spec.Fallback = &v1alpha1.FallbackSpec{Model: v1alpha1.ModelSpec{Name: "Qwen/Qwen3-0.6B"}}
	create(t, qs)
	unavailable := func() error {
		if cfg := configOf(t, ns, "qwen3"); !strings.Contains(cfg, "fallbackAvailable: false") {
			return fmt.Errorf("gateway config does not mark the fallback unavailable:\n%s", cfg)
		}
		return nil
	}
	eventually(t, "fallback unavailable without endpoints", unavailable)
	setAvailable(t, ns, "qwen3-fallback", true)
	c := meta.FindStatusCondition(waitCondition(t, ns, "qwen3", v1alpha1.ConditionFallbackAvailable, metav1.ConditionFalse, ReasonNoReadyEndpoints).Status.Conditions,
		v1alpha1.ConditionFallbackAvailable)
	if !strings.Contains(c.Message, "qwen3-fallback has no ready endpoint") {
		t.Errorf("message = %q", c.Message)
	}

	fallbackSlice(t, ns, true)
	eventually(t, "fallback available with a ready endpoint", func() error {
		if cfg := configOf(t, ns, "qwen3"); strings.Contains(cfg, "fallbackAvailable") {
			return fmt.Errorf("gateway config still marks the fallback:\n%s", cfg)
		}
		return nil
	})
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionFallbackAvailable, metav1.ConditionTrue, "MinimumReplicasAvailable")
	eventually(t, "matches the render", func() error { return matchesRender(t, inputsOf(t, ns, "qwen3", "", "")) })

	fallbackSlice(t, ns, false)
	eventually(t, "fallback unavailable once its endpoint is not ready", unavailable)
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionFallbackAvailable, metav1.ConditionFalse, ReasonNoReadyEndpoints)
}

// TestSharedPodFallback: with placement SharedPod the fallback runs in the engine pods (no
// fallback Deployment; switching from SeparateDeployment prunes it), its Service selects the
// engine pods on the fallback port, the gateway reaches it there, and FallbackAvailable
// follows the engine Deployment and the fallback Service's endpoints.
func TestSharedPodFallback(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	qs := qwen3(ns)
	qs.Spec.Engine.GPUMemoryUtilization = "0.6"
	qs.Spec.Fallback = &v1alpha1.FallbackSpec{Model: v1alpha1.ModelSpec{Name: "Qwen/Qwen3-0.6B"}}
	create(t, qs)
	eventually(t, "separate fallback", func() error {
		if live(t, "apps/v1", "Deployment", ns, "qwen3-fallback") == nil {
			return fmt.Errorf("no fallback Deployment")
		}
		return nil
	})
	update(t, qs, func(q *v1alpha1.QwenService) { q.Spec.Fallback.Placement = v1alpha1.FallbackSharedPod })
	waitGone(t, "apps/v1", "Deployment", ns, "qwen3-fallback")
	eventually(t, "shared pod rendered", func() error { return matchesRender(t, inputsOf(t, ns, "qwen3", "", "")) })
	waitField(t, "v1", "Service", ns, "qwen3-fallback", "engine", "spec", "selector", render.LabelComponent)
	if cfg := configOf(t, ns, "qwen3"); !strings.Contains(cfg, "url: http://qwen3-fallback."+ns+".svc:8001") {
		t.Errorf("gateway config does not reach the fallback on its own port:\n%s", cfg)
	}
	d := live(t, "apps/v1", "Deployment", ns, "qwen3-engine")
	cs := d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
	if len(cs) != 2 || cs[1].(map[string]any)["name"] != "fallback" {
		t.Fatalf("engine pod containers: %v", cs)
	}
	setAvailable(t, ns, "qwen3-engine", true)
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionFallbackAvailable, metav1.ConditionFalse, ReasonNoReadyEndpoints)
	fallbackSlice(t, ns, true)
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionFallbackAvailable, metav1.ConditionTrue, "MinimumReplicasAvailable")
}
