package render

import (
	"fmt"
	"strings"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// Labels every rendered object carries; the controller finds its children by them.
const (
	// LabelManagedBy marks objects the operator owns.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of LabelManagedBy and the server-side apply field manager.
	ManagedBy = "qwen-operator"
	// LabelService names the QwenService an object belongs to.
	LabelService = "qwenops.io/service"
	// LabelComponent is engine, fallback, gateway, cache, exposure or network-policy.
	LabelComponent = "app.kubernetes.io/component"
	labelName      = "app.kubernetes.io/name"
	labelInstance  = "app.kubernetes.io/instance"
	labelPartOf    = "app.kubernetes.io/part-of"
)

// Components, the values of LabelComponent.
const (
	ComponentEngine   = "engine"
	ComponentFallback = "fallback"
	ComponentGateway  = "gateway"
	ComponentCache    = "cache"
	ComponentExposure = "exposure"
	// ComponentNetworkPolicy labels the NetworkPolicy guarding the engines.
	ComponentNetworkPolicy = "network-policy"
)

// Fixed ports and paths of the gateway pod.
const (
	// GatewayPort is the gateway's HTTP port (OpenAI API, /healthz, /readyz), the one the
	// Service, the Ingress and the HTTPRoute route to.
	GatewayPort = 8080
	// GatewayAdminPort serves the gateway's /metrics; only scrapers reach it, on the pod.
	GatewayAdminPort = 9090
	// GatewayKeysDir is where the API keys Secret is mounted (one file per key id).
	GatewayKeysDir = "/etc/qwen-gateway/keys"
	// RedisPasswordEnv is the gateway's environment variable holding the Redis password.
	RedisPasswordEnv = "QWEN_REDIS_PASSWORD"
	// RedisSentinelPasswordEnv holds the sentinels' own password.
	RedisSentinelPasswordEnv = "QWEN_REDIS_SENTINEL_PASSWORD"
	// RedisCAFile is where the Redis CA bundle (spec.gateway.redis.caSecretRef) is mounted.
	RedisCAFile = "/etc/qwen-gateway/redis-ca/ca.crt"
	// HFCacheDir is the Hugging Face cache inside engine pods.
	HFCacheDir = "/root/.cache/huggingface"
)

// maxNameLen keeps "<name>-fallback" within a 63-character DNS label (Service names).
const maxNameLen = 63 - len("-fallback")

// EngineName is the name of the engine Deployment and Service.
func EngineName(qs *v1alpha1.QwenService) string { return qs.Name + "-engine" }

// FallbackName is the name of the fallback Deployment and Service.
func FallbackName(qs *v1alpha1.QwenService) string { return qs.Name + "-fallback" }

// GatewayName names the gateway Deployment, Service, ConfigMap, ServiceAccount, Role,
// RoleBinding and PodDisruptionBudget.
func GatewayName(qs *v1alpha1.QwenService) string { return qs.Name + "-gateway" }

// CacheName is the name of the model cache PVC the operator creates.
func CacheName(qs *v1alpha1.QwenService) string { return qs.Name + "-cache" }

// ExposureName names the Ingress, HTTPRoute and BackendTrafficPolicy.
func ExposureName(qs *v1alpha1.QwenService) string { return qs.Name }

// Endpoint is the in-cluster OpenAI base URL of the gateway.
func Endpoint(qs *v1alpha1.QwenService) string {
	return fmt.Sprintf("http://%s.%s.svc:%d/v1", GatewayName(qs), qs.Namespace, GatewayPort)
}

// URL is the external OpenAI base URL: the Ingress host (https with a TLS Secret), else the
// first non-wildcard HTTPRoute hostname; empty when the service is not exposed by name.
func URL(qs *v1alpha1.QwenService) string {
	x := qs.Spec.Exposure
	if x == nil {
		return ""
	}
	if in := x.Ingress; in != nil && !strings.HasPrefix(in.Host, "*") {
		scheme := "http"
		if in.TLSSecretName != "" {
			scheme = "https"
		}
		return scheme + "://" + in.Host + "/v1"
	}
	if r := x.HTTPRoute; r != nil {
		for _, h := range r.Hostnames {
			if !strings.HasPrefix(h, "*") {
				return "http://" + h + "/v1"
			}
		}
	}
	return ""
}

// ServedName is the model name clients send: spec servedName, else the last path segment of
// the model name (Qwen/Qwen3-1.7B serves as Qwen3-1.7B).
func ServedName(m v1alpha1.ModelSpec) string {
	if m.ServedName != "" {
		return m.ServedName
	}
	name := strings.TrimRight(m.Name, "/")
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if name == "" {
		return m.Name
	}
	return name
}

// ChildLabels are the labels of every child of qs in component.
func ChildLabels(qs *v1alpha1.QwenService, component string) map[string]string {
	l := selectorLabels(qs, component)
	l[LabelManagedBy] = ManagedBy
	l[labelName] = "qwen-" + component
	l[labelInstance] = qs.Name
	l[labelPartOf] = "qwen-operator"
	return l
}

// OwnedSelector selects every child of qs.
func OwnedSelector(qs *v1alpha1.QwenService) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelService: qs.Name}
}

// selectorLabels are the immutable Deployment selector of a component.
func selectorLabels(qs *v1alpha1.QwenService, component string) map[string]string {
	return map[string]string{LabelService: qs.Name, LabelComponent: component}
}
