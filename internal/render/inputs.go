package render

import (
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// Defaults are the images a QwenService gets when its spec leaves them empty (the operator's
// flags).
type Defaults struct {
	VLLMImage      string
	SGLangImage    string
	SimulatorImage string
	GatewayImage   string
}

// Inputs is everything a render depends on.
type Inputs struct {
	// Service is the QwenService to render; it must have a name, namespace and UID.
	Service *v1alpha1.QwenService
	// Policy is the RateLimitPolicy of Service, or nil for no limits. Only its name and its
	// status are read, through Enforced.
	Policy *v1alpha1.RateLimitPolicy
	// Plan is the DegradationPlan in force for Service, or nil for level 0.
	Plan *v1alpha1.DegradationPlan
	// Defaults fill the images the spec leaves empty.
	Defaults Defaults
	// MissingSecrets are the SecretRefs whose Secret does not exist.
	MissingSecrets []SecretRef
	// HTTPRouteServed says the API server serves Gateway API's HTTPRoute
	// (gateway.networking.k8s.io/v1); spec.exposure.httpRoute needs it.
	HTTPRouteServed bool
	// BackendTrafficPolicyServed says the API server serves Envoy Gateway's
	// gateway.envoyproxy.io/v1alpha1 BackendTrafficPolicy.
	BackendTrafficPolicyServed bool
	// FallbackUnavailable says the fallback Service has no ready endpoints: the gateway is told
	// not to send it traffic (level 3 then acts as level 2, and while the primary's breaker is
	// open requests get the cache or the static reply instead of a 502).
	FallbackUnavailable bool
}

// SecretRef is a Secret a QwenService references, with the field that references it.
type SecretRef struct {
	// Name of the Secret in the service's namespace.
	Name string
	// Field is the spec path that names it, e.g. spec.engine.hfTokenSecretRef.
	Field string
}

// SecretRefs lists the Secrets the rendered pods need, sorted by name then field. The TLS
// Secret of an Ingress is not listed: the ingress controller reads it, not our pods.
func SecretRefs(qs *v1alpha1.QwenService) []SecretRef {
	var refs []SecretRef
	if r := qs.Spec.Engine.HFTokenSecretRef; r != nil {
		refs = append(refs, SecretRef{r.Name, "spec.engine.hfTokenSecretRef"})
	}
	if r := qs.Spec.Gateway.APIKeysSecretRef; r != nil {
		refs = append(refs, SecretRef{r.Name, "spec.gateway.apiKeysSecretRef"})
	}
	if rd := qs.Spec.Gateway.Redis; rd != nil {
		if rd.PasswordSecretRef != nil {
			refs = append(refs, SecretRef{rd.PasswordSecretRef.Name, "spec.gateway.redis.passwordSecretRef"})
		}
		if s := rd.Sentinel; s != nil && s.PasswordSecretRef != nil {
			refs = append(refs, SecretRef{s.PasswordSecretRef.Name, "spec.gateway.redis.sentinel.passwordSecretRef"})
		}
		if rd.CASecretRef != nil {
			refs = append(refs, SecretRef{rd.CASecretRef.Name, "spec.gateway.redis.caSecretRef"})
		}
	}
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].Name != refs[j].Name {
			return refs[i].Name < refs[j].Name
		}
		return refs[i].Field < refs[j].Field
	})
	return refs
}

// Level is the degradation level in force: the plan's status.level, 0 without a plan.
func Level(plan *v1alpha1.DegradationPlan) int32 {
	if plan == nil {
		return v1alpha1.LevelNormal
	}
	return plan.Status.Level
}

// Enforced is what a policy asks the gateway to enforce: its status.effective, as the
// RateLimitPolicy controller resolved it. It is nil (no limits) without a policy, and for a
// policy that is not Accepted or whose status has not caught up with its spec (an edit the
// controller has not judged yet must not reach the gateway). The renderer reads a policy only
// through Enforced, never its spec.
func Enforced(p *v1alpha1.RateLimitPolicy) *v1alpha1.EffectivePolicy {
	if p == nil || p.Status.Effective == nil || p.Status.ObservedGeneration != p.Generation {
		return nil
	}
	if c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionAccepted); c == nil ||
		c.Status != metav1.ConditionTrue || c.ObservedGeneration != p.Generation {
		return nil
	}
	return p.Status.Effective
}
