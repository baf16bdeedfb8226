package render

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
)

// TestNetworkPolicySelectsTheRenderedPods: the policy guards exactly the engine and fallback
// pod templates and admits exactly the gateway's, on the engine port; it is gone when turned off.
func TestNetworkPolicySelectsTheRenderedPods(t *testing.T) {
	objs, err := Render(input(t, "vllm-full"))
	if err != nil {
		t.Fatal(err)
	}
	np := find(t, objs, "NetworkPolicy", "qwen3-engines").(*networkingv1.NetworkPolicy)
	guarded, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	admitted, err := metav1.LabelSelectorAsSelector(np.Spec.Ingress[0].From[0].PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][2]bool{"qwen3-engine": {true, false}, "qwen3-fallback": {true, false}, "qwen3-gateway": {false, true}} {
		pod := labels.Set(find(t, objs, "Deployment", name).(*appsv1.Deployment).Spec.Template.Labels)
		if guarded.Matches(pod) != want[0] || admitted.Matches(pod) != want[1] {
			t.Errorf("%s pods: guarded %v admitted %v, want %v", name, guarded.Matches(pod), admitted.Matches(pod), want)
		}
	}
	if np.Spec.Ingress[0].From[0].NamespaceSelector != nil {
		t.Error("the gateway rule admits other namespaces")
	}
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) != 1 || rule.Ports[0].Port.IntValue() != 8000 {
			t.Errorf("rule ports %v, want the engine port only", rule.Ports)
		}
	}
	if scrapers := np.Spec.Ingress[1].From; len(scrapers) != 1 || scrapers[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
		t.Errorf("scrapers %v, want spec.networkPolicy.metricsFrom", scrapers)
	}
	if objs, _ := Render(input(t, "networkpolicy-off")); has(objs, "NetworkPolicy", "qwen3-engines") {
		t.Error("a NetworkPolicy although spec.networkPolicy.enabled is false")
	}
}

// TestEnginePodsHaveNoTokenAndNoPrivileges: no engine pod mounts a service-account token or
// may escalate; the Simulator also runs as non-root on a read-only root filesystem.
func TestEnginePodsHaveNoTokenAndNoPrivileges(t *testing.T) {
	for _, name := range []string{"vllm-full", "engine-sglang", "engine-simulator"} {
		objs, _ := Render(input(t, name))
		for _, dep := range []string{"qwen3-engine", "qwen3-fallback"} {
			if !has(objs, "Deployment", dep) {
				continue
			}
			pod := find(t, objs, "Deployment", dep).(*appsv1.Deployment).Spec.Template.Spec
			sc := pod.Containers[0].SecurityContext
			if ptr.Deref(pod.AutomountServiceAccountToken, true) || sc == nil || ptr.Deref(sc.AllowPrivilegeEscalation, true) ||
				len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || pod.SecurityContext.SeccompProfile == nil {
				t.Errorf("%s %s: token %v, securityContext %+v", name, dep, pod.AutomountServiceAccountToken, sc)
			}
			simulator := strings.Contains(name, "simulator")
			if simulator != ptr.Deref(sc.RunAsNonRoot, false) || simulator != ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
				t.Errorf("%s %s: runAsNonRoot %v readOnlyRootFilesystem %v", name, dep, sc.RunAsNonRoot, sc.ReadOnlyRootFilesystem)
			}
		}
	}
}

// TestGatewayShutdownFitsTheGracePeriod: the pod's grace period covers the gateway's shutdown
// delay and drain timeout, which it is given as flags.
func TestGatewayShutdownFitsTheGracePeriod(t *testing.T) {
	objs, _ := Render(input(t, "vllm-minimal"))
	pod := find(t, objs, "Deployment", "qwen3-gateway").(*appsv1.Deployment).Spec.Template.Spec
	var total time.Duration
	args := pod.Containers[0].Args
	for i, a := range args {
		if (a == "--shutdown-delay" || a == "--shutdown-timeout") && i+1 < len(args) {
			d, err := time.ParseDuration(args[i+1])
			if err != nil {
				t.Fatal(err)
			}
			total += d
		}
	}
	grace := time.Duration(ptr.Deref(pod.TerminationGracePeriodSeconds, 30)) * time.Second
	if total < 30*time.Second || grace <= total {
		t.Errorf("shutdown delay + timeout %s, grace period %s: the kubelet would kill a draining gateway", total, grace)
	}
	if pod.Containers[0].Ports[1].ContainerPort != GatewayAdminPort || find(t, objs, "Deployment", "qwen3-gateway").(*appsv1.Deployment).Spec.Template.Annotations["prometheus.io/port"] != "9090" {
		t.Error("the gateway's metrics are not scraped on the admin port")
	}
}

// TestTrustedHopsDefaultFollowsExposure: an exposed service trusts one X-Forwarded-For hop by
// default (the ingress or Envoy appends the client), an internal one none; the spec wins.
func TestTrustedHopsDefaultFollowsExposure(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  *int32
		want int32
	}{
		{"vllm-minimal", nil, 0},
		{"exposure-ingress", nil, 1},
		{"exposure-httproute", nil, 1},
		{"exposure-both", nil, 1},
		{"exposure-ingress", ptr.To(int32(0)), 0},
		{"exposure-ingress", ptr.To(int32(2)), 2},
	} {
		in := input(t, tt.name)
		in.Service.Spec.Gateway.TrustedHops = tt.set
		if got := GatewayConfig(in).TrustedHops; got != tt.want {
			t.Errorf("%s with trustedHops %v: %d, want %d", tt.name, tt.set, got, tt.want)
		}
	}
}
