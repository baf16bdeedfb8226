package render

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// NetworkPolicyName names the NetworkPolicy that guards the engine and fallback pods.
func NetworkPolicyName(qs *v1alpha1.QwenService) string { return qs.Name + "-engines" }

// defaultMetricsFrom are the scrapers admitted to the engines without spec.networkPolicy.
// metricsFrom: Prometheus pods in any namespace, as the Prometheus Operator labels them.
func defaultMetricsFrom() []networkingv1.NetworkPolicyPeer {
	return []networkingv1.NetworkPolicyPeer{{
		NamespaceSelector: &metav1.LabelSelector{},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
	}}
}

// networkPolicy admits to the engine and fallback pods of qs, on the engine port, only the
// gateway pods of qs and the metrics scrapers (the engines serve /metrics on their API port,
// so a scraper could call the model too: name them narrowly). Everything else, other pods of
// the namespace included, is refused, so nothing gets around the gateway's limits. Egress is
// left open: engines download their models. Nil when spec.networkPolicy.enabled is false.
func networkPolicy(qs *v1alpha1.QwenService) *networkingv1.NetworkPolicy {
	spec := qs.Spec.NetworkPolicy
	if !ptr.Deref(spec.Enabled, true) {
		return nil
	}
	scrapers := spec.MetricsFrom
	if len(scrapers) == 0 {
		scrapers = defaultMetricsFrom()
	}
	ports := []networkingv1.NetworkPolicyPort{{
		Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(enginePort(qs.Spec.Engine))),
	}}
	if FallbackShared(qs) {
		ports = append(ports, networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(FallbackPort(qs)))})
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: objectMeta(qs, NetworkPolicyName(qs), ComponentNetworkPolicy),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{
				MatchLabels: map[string]string{LabelService: qs.Name},
				MatchExpressions: []metav1.LabelSelectorRequirement{{
					Key: LabelComponent, Operator: metav1.LabelSelectorOpIn, Values: []string{ComponentEngine, ComponentFallback},
				}},
			},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: selectorLabels(qs, ComponentGateway)}}}, Ports: ports},
				{From: scrapers, Ports: ports},
			},
		},
	}
}
