package controllers

import (
	"context"
	"fmt"
	"os"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// TestBackendTrafficPolicyOnceServed installs Envoy Gateway's own BackendTrafficPolicy CRD (the
// version hack/versions.sh pins, so the API server checks the rendered policy against the real
// schema) while the manager runs: an HTTPRoute-exposed service with a policy then gets the
// route's request timeout and a per-client-IP local rate limit, which follows the effective
// limits and goes away with the HTTPRoute.
func TestBackendTrafficPolicyOnceServed(t *testing.T) {
	t.Parallel()
	crd, err := os.ReadFile(tools.CRDFile(t, "backendtrafficpolicies.gateway.envoyproxy.io"))
	if err != nil {
		t.Fatal(err)
	}
	installCRD(t, string(crd))
	reconciler.btp.expire()
	ns := newNamespace(t)
	p := limitsPolicy(ns, "qwen3-limits", 30)
	createAccepted(t, p)
	qs := qwen3(ns)
	qs.Spec.Exposure = &v1alpha1.ExposureSpec{HTTPRoute: &v1alpha1.HTTPRouteExposure{ParentRefs: []v1alpha1.ParentRef{{Name: "eg"}}}}
	create(t, qs)

	const api = "gateway.envoyproxy.io/v1alpha1"
	rule := []string{"spec", "rateLimit", "local", "rules"}
	eventually(t, "BackendTrafficPolicy at 30/min", func() error {
		in := inputsOf(t, ns, "qwen3", "qwen3-limits", "")
		in.BackendTrafficPolicyServed = true
		if err := matchesRender(t, in); err != nil {
			return err
		}
		return btpRequests(t, ns, int64(30))
	})
	if u := live(t, api, "BackendTrafficPolicy", ns, "qwen3"); u != nil {
		if refs, _, _ := unstructured.NestedSlice(u.Object, "spec", "targetRefs"); fmt.Sprint(refs) != "[map[group:gateway.networking.k8s.io kind:HTTPRoute name:qwen3]]" {
			t.Errorf("targetRefs = %v", refs)
		}
		if rules, _, _ := unstructured.NestedSlice(u.Object, rule...); len(rules) != 2 {
			t.Errorf("want one rule per address family, got %v", rules)
		}
		if timeout, _, _ := unstructured.NestedString(u.Object, "spec", "timeout", "http", "requestTimeout"); timeout != "10m" {
			t.Errorf("requestTimeout %q, want the route's default 10m", timeout)
		}
	}

	updateStatus(t, p, func(p *v1alpha1.RateLimitPolicy) {
		p.Status.Effective.Limits = v1alpha1.LimitSet{RequestsPerMinute: ptr.To(int32(200))}
	})
	eventually(t, "BackendTrafficPolicy at 200/min", func() error { return btpRequests(t, ns, 200) })

	update(t, qs, func(q *v1alpha1.QwenService) {
		q.Spec.Exposure = &v1alpha1.ExposureSpec{Ingress: &v1alpha1.IngressExposure{Host: "qwen.example.com"}}
	})
	waitGone(t, api, "BackendTrafficPolicy", ns, "qwen3")
	waitGone(t, "gateway.networking.k8s.io/v1", "HTTPRoute", ns, "qwen3")
}

// btpRequests checks the requests per minute of every rule of the service's policy.
func btpRequests(t testing.TB, ns string, want int64) error {
	u := live(t, "gateway.envoyproxy.io/v1alpha1", "BackendTrafficPolicy", ns, "qwen3")
	if u == nil {
		return fmt.Errorf("no BackendTrafficPolicy")
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rateLimit", "local", "rules")
	for _, r := range rules {
		got, _, _ := unstructured.NestedInt64(r.(map[string]any), "limit", "requests")
		if got != want {
			return fmt.Errorf("rule limit %d, want %d", got, want)
		}
	}
	return nil
}

// installCRD creates a CRD (unless it exists) and waits until it is established.
func installCRD(t testing.TB, manifest string) {
	t.Helper()
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &crd.Object); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, "CRD established", func() error {
		u := live(t, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "", crd.GetName())
		if u == nil {
			return fmt.Errorf("CRD missing")
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if m := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
				return nil
			}
		}
		return fmt.Errorf("not established: %v", conds)
	})
}
