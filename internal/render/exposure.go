package render

import (
	"cmp"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// BackendTrafficPolicy identifies Envoy Gateway's policy kind.
const (
	BackendTrafficPolicyGroup   = "gateway.envoyproxy.io"
	BackendTrafficPolicyVersion = "v1alpha1"
	BackendTrafficPolicyKind    = "BackendTrafficPolicy"
)

// ingress routes the Ingress host to the gateway Service. Annotations, lowest precedence
// first: streaming-friendly ingress-nginx defaults, the user's, then the edge limits.
func ingress(qs *v1alpha1.QwenService, edge EdgeLimits) *networkingv1.Ingress {
	x := qs.Spec.Exposure.Ingress
	ann := map[string]string{
		// Stream tokens as they come and give long generations time to finish.
		"nginx.ingress.kubernetes.io/proxy-buffering":    "off",
		"nginx.ingress.kubernetes.io/proxy-read-timeout": "600",
		"nginx.ingress.kubernetes.io/proxy-send-timeout": "600",
		"nginx.ingress.kubernetes.io/proxy-body-size":    strconv.FormatInt(ptr.Deref(qs.Spec.Gateway.MaxRequestBodyBytes, 1<<20), 10),
	}
	for k, v := range x.Annotations {
		ann[k] = v
	}
	for k, v := range edge.NginxAnnotations() {
		ann[k] = v
	}
	meta := objectMeta(qs, ExposureName(qs), ComponentExposure)
	meta.Annotations = ann
	ing := &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: meta,
		Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{{
				Host: x.Host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path:     "/",
						PathType: ptr.To(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: GatewayName(qs), Port: networkingv1.ServiceBackendPort{Number: GatewayPort},
						}},
					}},
				}},
			}},
		},
	}
	if x.ClassName != "" {
		ing.Spec.IngressClassName = ptr.To(x.ClassName)
	}
	if x.TLSSecretName != "" {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{x.Host}, SecretName: x.TLSSecretName}}
	}
	return ing
}

// defaultRouteTimeout bounds a whole request through an HTTPRoute (and its Envoy Gateway
// BackendTrafficPolicy) unless spec.exposure.httpRoute.timeouts says otherwise: long enough for
// a long completion or stream, the same bound as the Ingress's proxy-read-timeout.
const defaultRouteTimeout = "10m"

// routeTimeouts are the request and backend-request timeouts of the HTTPRoute: the spec's,
// with request defaulting to backendRequest or defaultRouteTimeout, and backendRequest to
// request (the schema keeps backendRequest within request).
func routeTimeouts(x *v1alpha1.HTTPRouteExposure) (request, backendRequest string) {
	var t v1alpha1.HTTPRouteTimeouts
	if x.Timeouts != nil {
		t = *x.Timeouts
	}
	request, backendRequest = t.Request, t.BackendRequest
	if request == "" {
		request = cmp.Or(backendRequest, defaultRouteTimeout)
	}
	return request, cmp.Or(backendRequest, request)
}

// httpRoute attaches to the spec's parents and sends every path to the gateway Service, with
// the route timeouts.
func httpRoute(qs *v1alpha1.QwenService) *gatewayv1.HTTPRoute {
	x := qs.Spec.Exposure.HTTPRoute
	request, backend := routeTimeouts(x)
	route := &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: objectMeta(qs, ExposureName(qs), ComponentExposure),
		Spec: gatewayv1.HTTPRouteSpec{
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{
					Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/"),
				}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
					BackendObjectReference: gatewayv1.BackendObjectReference{
						Name: gatewayv1.ObjectName(GatewayName(qs)), Port: ptr.To(gatewayv1.PortNumber(GatewayPort)),
					},
				}}},
				Timeouts: &gatewayv1.HTTPRouteTimeouts{
					Request:        ptr.To(gatewayv1.Duration(request)),
					BackendRequest: ptr.To(gatewayv1.Duration(backend)),
				},
			}},
		},
	}
	for _, p := range x.ParentRefs {
		ref := gatewayv1.ParentReference{Name: gatewayv1.ObjectName(p.Name)}
		if p.Group != "" {
			ref.Group = ptr.To(gatewayv1.Group(p.Group))
		}
		if p.Kind != "" {
			ref.Kind = ptr.To(gatewayv1.Kind(p.Kind))
		}
		if p.Namespace != "" {
			ref.Namespace = ptr.To(gatewayv1.Namespace(p.Namespace))
		}
		if p.SectionName != "" {
			ref.SectionName = ptr.To(gatewayv1.SectionName(p.SectionName))
		}
		route.Spec.ParentRefs = append(route.Spec.ParentRefs, ref)
	}
	for _, h := range x.Hostnames {
		route.Spec.Hostnames = append(route.Spec.Hostnames, gatewayv1.Hostname(h))
	}
	return route
}

// backendTrafficPolicy is Envoy Gateway's policy for the HTTPRoute: the route's request
// timeout as its requestTimeout (Envoy Gateway applies either; they must agree), and, with an
// edge rate, a local rate limit per client IP (one rule per address family) at the most
// requests per minute any single client may send, since a local rule cannot exempt an
// override tier's addresses. The rate limit needs an Envoy Gateway whose local rate limits
// accept Distinct source CIDRs; the timeout, one with BackendTrafficPolicy timeouts (1.2+).
func backendTrafficPolicy(qs *v1alpha1.QwenService, edge EdgeLimits) *unstructured.Unstructured {
	request, _ := routeTimeouts(qs.Spec.Exposure.HTTPRoute)
	spec := map[string]any{
		"targetRefs": []any{map[string]any{
			"group": gatewayv1.GroupName, "kind": "HTTPRoute", "name": ExposureName(qs),
		}},
		"timeout": map[string]any{"http": map[string]any{"requestTimeout": request}},
	}
	if rpm := edge.CeilingRequestsPerMinute; edge.RequestsPerMinute > 0 && rpm > 0 {
		rule := func(cidr string) any {
			return map[string]any{
				"clientSelectors": []any{map[string]any{"sourceCIDR": map[string]any{"type": "Distinct", "value": cidr}}},
				"limit":           map[string]any{"requests": rpm, "unit": "Minute"},
			}
		}
		spec["rateLimit"] = map[string]any{
			"type":  "Local",
			"local": map[string]any{"rules": []any{rule("0.0.0.0/0"), rule("::/0")}},
		}
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(BackendTrafficPolicyGroup + "/" + BackendTrafficPolicyVersion)
	u.SetKind(BackendTrafficPolicyKind)
	meta := objectMeta(qs, ExposureName(qs), ComponentExposure)
	u.SetName(meta.Name)
	u.SetNamespace(meta.Namespace)
	u.SetLabels(meta.Labels)
	u.SetOwnerReferences(meta.OwnerReferences)
	return u
}
