package render

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// Reasons of an InvalidError; each becomes the reason of the Ready=False condition.
const (
	ReasonInvalidName           = "InvalidName"
	ReasonSecretNotFound        = "SecretNotFound"
	ReasonAPIKeysSecretRequired = "APIKeysSecretRequired"
	ReasonInvalidGatewayConfig  = "InvalidGatewayConfig"
	ReasonGatewayAPINotServed   = "GatewayAPINotServed"
	ReasonCacheNeedsRedis       = "CacheNeedsRedis"
	ReasonInvalidSharedPod      = "InvalidSharedPod"
)

// InvalidError is a spec the schema accepts but that cannot be rendered. Retrying does not
// help; a change to the spec or to a referenced object does.
type InvalidError struct {
	// Reason is a CamelCase condition reason naming the problem.
	Reason string
	// Message says what is wrong and how to fix it.
	Message string
}

func (e *InvalidError) Error() string { return e.Reason + ": " + e.Message }

// check is one rule of Validate: it reports a reason and message when the inputs fail it.
type check func(in Inputs) (reason, msg string, failed bool)

// checks run in order; the first failure is reported.
var checks = []check{checkName, checkSecrets, checkAPIKeySource, checkHTTPRouteServed, checkCacheRedis, checkSharedPod}

// Validate reports the first problem that prevents rendering in as an *InvalidError.
func Validate(in Inputs) error {
	for _, c := range checks {
		if reason, msg, failed := c(in); failed {
			return &InvalidError{Reason: reason, Message: msg}
		}
	}
	return nil
}

func checkName(in Inputs) (string, string, bool) {
	name := in.Service.Name
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 || len(name) > maxNameLen {
		return ReasonInvalidName, fmt.Sprintf("the name %q must be a DNS label (lower-case letters, digits and '-', starting with a letter) of at most %d characters, so that %q is a valid Service name",
			name, maxNameLen, name+"-fallback"), true
	}
	return "", "", false
}

func checkSecrets(in Inputs) (string, string, bool) {
	if len(in.MissingSecrets) == 0 {
		return "", "", false
	}
	var parts []string
	for _, r := range in.MissingSecrets {
		parts = append(parts, fmt.Sprintf("Secret %q (%s)", r.Name, r.Field))
	}
	return ReasonSecretNotFound, fmt.Sprintf("%s not found in namespace %q; create it and the service recovers",
		strings.Join(parts, ", "), in.Service.Namespace), true
}

func checkAPIKeySource(in Inputs) (string, string, bool) {
	e := Enforced(in.Policy)
	if e == nil || e.Key.Source != v1alpha1.KeyAPIKey || in.Service.Spec.Gateway.APIKeysSecretRef != nil {
		return "", "", false
	}
	return ReasonAPIKeysSecretRequired, fmt.Sprintf("RateLimitPolicy %q limits per API key (key.source APIKey) but spec.gateway.apiKeysSecretRef is not set; set it or use key.source ClientIP",
		in.Policy.Name), true
}

func checkHTTPRouteServed(in Inputs) (string, string, bool) {
	x := in.Service.Spec.Exposure
	if x == nil || x.HTTPRoute == nil || in.HTTPRouteServed {
		return "", "", false
	}
	return ReasonGatewayAPINotServed, "spec.exposure.httpRoute needs the Gateway API HTTPRoute (gateway.networking.k8s.io/v1), which the API server does not serve; install the Gateway API CRDs or expose the service with spec.exposure.ingress", true
}

func checkCacheRedis(in Inputs) (string, string, bool) {
	p := in.Plan
	if p == nil || p.Spec.Cache == nil || !p.Spec.Cache.Enabled || p.Spec.Cache.Backend != v1alpha1.CacheRedis || in.Service.Spec.Gateway.Redis != nil {
		return "", "", false
	}
	return ReasonCacheNeedsRedis, fmt.Sprintf("DegradationPlan %q sets spec.cache.backend Redis but spec.gateway.redis is not set; set it or use backend Memory",
		p.Name), true
}

// checkSharedPod: a fallback in the primary's pods needs its own port, at most one GPU per
// pod (the fallback container reaches the pod's GPU through NVIDIA_VISIBLE_DEVICES=all, which
// on a node with several would be every GPU), and GPU memory shares that fit together.
func checkSharedPod(in Inputs) (string, string, bool) {
	qs := in.Service
	if !FallbackShared(qs) {
		return "", "", false
	}
	e := qs.Spec.Engine
	if FallbackPort(qs) == enginePort(e) {
		return ReasonInvalidSharedPod, fmt.Sprintf("spec.fallback.port %d is spec.engine.port: with placement SharedPod the two engines share the pod's network and need two ports", FallbackPort(qs)), true
	}
	if g := GPUs(e, qs.Spec.Resources); g > 1 {
		return ReasonInvalidSharedPod, fmt.Sprintf("spec.resources.gpus is %d: placement SharedPod shares one GPU between the two engines; use placement SeparateDeployment for multi-GPU engines", g), true
	}
	if GPUs(e, qs.Spec.Resources) == 0 {
		return "", "", false
	}
	primary, fallback := e.GPUMemoryUtilization, qs.Spec.Fallback.GPUMemoryUtilization
	if primary == "" {
		primary = DefaultSharedPrimaryMemory
	}
	if fallback == "" {
		fallback = DefaultSharedFallbackMemory
	}
	p, _ := strconv.ParseFloat(string(primary), 64)
	f, _ := strconv.ParseFloat(string(fallback), 64)
	if p+f > maxSharedMemory+1e-9 {
		return ReasonInvalidSharedPod, fmt.Sprintf("spec.engine.gpuMemoryUtilization %s + spec.fallback.gpuMemoryUtilization %s = %.2f: with placement SharedPod both engines share one GPU and their shares must add up to at most %.2f (e.g. 0.6 and 0.3)",
			primary, fallback, p+f, maxSharedMemory), true
	}
	return "", "", false
}
