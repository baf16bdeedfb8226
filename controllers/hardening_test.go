package controllers

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
	"github.com/qwenops/qwen-operator/internal/telemetry"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// TestForeignObjectIsLeftAlone: an object with the name of a child that the QwenService does
// not control (made by hand, no owner reference) is neither taken over nor changed; Ready is
// False with reason Conflict naming it, and the other children are rendered. Once it is
// deleted, the service renders its own.
func TestForeignObjectIsLeftAlone(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qwen3-gateway"}, Data: map[string]string{"mine": "yes"}}
	create(t, foreign)
	labelled := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qwen3-engine", Labels: render.ChildLabels(qwen3(ns), render.ComponentEngine)},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 1234}}}}
	create(t, labelled)
	create(t, qwen3(ns))

	qs := waitCondition(t, ns, "qwen3", v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonConflict)
	if msg := conditionOf(qs, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "ConfigMap qwen3-gateway") || !strings.Contains(msg, "Service qwen3-engine") {
		t.Errorf("Ready message %q does not name both objects", msg)
	}
	eventually(t, "the other children", func() error {
		if live(t, "apps/v1", "Deployment", ns, "qwen3-engine") == nil || live(t, "v1", "Service", ns, "qwen3-gateway") == nil {
			return fmt.Errorf("not rendered yet")
		}
		return nil
	})
	cm := live(t, "v1", "ConfigMap", ns, "qwen3-gateway")
	if len(cm.GetOwnerReferences()) != 0 || fmt.Sprint(cm.Object["data"]) != "map[mine:yes]" {
		t.Errorf("the foreign ConfigMap was changed: %v", cm.Object)
	}
	for _, mf := range cm.GetManagedFields() {
		if mf.Manager == render.ManagedBy {
			t.Errorf("the operator manages fields of the foreign ConfigMap: %+v", mf)
		}
	}
	if svc := live(t, "v1", "Service", ns, "qwen3-engine"); fmt.Sprint(svc.Object["spec"].(map[string]any)["ports"]) != fmt.Sprint([]any{map[string]any{"port": int64(1234), "protocol": "TCP", "targetPort": int64(1234)}}) {
		t.Errorf("the labelled but unowned Service was changed: %v", svc.Object["spec"])
	}

	for _, o := range []client.Object{foreign, labelled} {
		if err := env.Client.Delete(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the service's own children once the foreign ones are gone", func() error {
		return matchesRender(t, inputsOf(t, ns, "qwen3", "", ""))
	})
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonEngineUnavailable)
}

// TestClientsIdentifiedCondition: a ClientIP policy on a service exposed through a proxy
// without any trust setting is reported (all clients share the proxy's limit); the default
// trustedHops of an exposed service identifies them.
func TestClientsIdentifiedCondition(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createAccepted(t, limitsPolicy(ns, "qwen3-limits", 30))
	qs := qwen3(ns)
	qs.Spec.Gateway.TrustedHops = ptr.To(int32(0))
	create(t, qs)
	got := waitCondition(t, ns, "qwen3", v1alpha1.ConditionClientsIdentified, metav1.ConditionFalse, ReasonProxyAddressOnly)
	if msg := conditionOf(got, v1alpha1.ConditionClientsIdentified).Message; !strings.Contains(msg, "trustedHops") {
		t.Errorf("message %q does not say what to set", msg)
	}
	update(t, getQS(t, ns, "qwen3"), func(q *v1alpha1.QwenService) { q.Spec.Gateway.TrustedHops = nil })
	waitCondition(t, ns, "qwen3", v1alpha1.ConditionClientsIdentified, metav1.ConditionTrue, ReasonForwardedFor)
	if cfg := configOf(t, ns, "qwen3"); !strings.Contains(cfg, "trustedHops: 1") {
		t.Errorf("the exposed service's gateway does not trust one hop:\n%s", cfg)
	}
}

// TestClientsConditionReasons covers every case of clientsCondition.
func TestClientsConditionReasons(t *testing.T) {
	policy := func(src v1alpha1.KeySource) *v1alpha1.RateLimitPolicy {
		p := limitsPolicy("ns", "p", 30)
		p.Status, _ = policyStatus(policyInputs{policy: p, targetExists: true, now: time.Now()})
		p.Status.Effective.Key = v1alpha1.KeySpec{Source: src, Header: "X-User"}
		return p
	}
	exposed, internal := qwen3("ns"), qwen3("ns")
	internal.Spec.Exposure = nil
	noTrust := qwen3("ns")
	noTrust.Spec.Gateway.TrustedHops = ptr.To(int32(0))
	proxies := noTrust.DeepCopy()
	proxies.Spec.Gateway.TrustedProxies = []string{"10.96.0.0/28"}
	for _, tt := range []struct {
		qs     *v1alpha1.QwenService
		p      *v1alpha1.RateLimitPolicy
		status metav1.ConditionStatus
		reason string
	}{
		{exposed, nil, metav1.ConditionTrue, ReasonNoRateLimit},
		{noTrust, policy(v1alpha1.KeyAPIKey), metav1.ConditionTrue, ReasonKeyedByAPIKey},
		{noTrust, policy(v1alpha1.KeyHeader), metav1.ConditionTrue, ReasonKeyedByHeader},
		{internal, policy(v1alpha1.KeyClientIP), metav1.ConditionTrue, ReasonPeerAddress},
		{exposed, policy(v1alpha1.KeyClientIP), metav1.ConditionTrue, ReasonForwardedFor},
		{proxies, policy(v1alpha1.KeyClientIP), metav1.ConditionTrue, ReasonForwardedFor},
		{noTrust, policy(v1alpha1.KeyClientIP), metav1.ConditionFalse, ReasonProxyAddressOnly},
	} {
		c := clientsCondition(tt.qs, tt.p)
		if c.Status != tt.status || c.Reason != tt.reason {
			t.Errorf("%s %v: %s %s, want %s %s", tt.qs.Spec.Gateway.TrustedProxies, tt.p != nil, c.Status, c.Reason, tt.status, tt.reason)
		}
	}
}

// TestManagerSecretAccessIsReadOnly: the generated role lets the manager read Secrets (list
// and watch their metadata for the QwenServices, get the Prometheus credentials plans and
// policies name) and nothing else: the manager of this suite, bound to that role alone, may
// not create, change or delete one.
func TestManagerSecretAccessIsReadOnly(t *testing.T) {
	root, err := tools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(b, &role); err != nil {
		t.Fatal(err)
	}
	for _, r := range role.Rules {
		if slices.Contains(r.Resources, "secrets") && fmt.Sprint(r.Verbs) != "[get list watch]" {
			t.Errorf("the manager's Secret verbs are %v, want [get list watch]", r.Verbs)
		}
	}
	ns := newNamespace(t)
	create(t, secret(ns, "s", map[string]string{"k": "v"}))
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: operatorUser}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "s"}, s); err != nil {
		t.Fatalf("the manager's identity cannot read a Secret: %v", err)
	}
	s.Data["k"] = []byte("changed")
	for what, err := range map[string]error{
		"update": c.Update(ctx, s),
		"create": c.Create(ctx, secret(ns, "new", map[string]string{"k": "v"})),
		"delete": c.Delete(ctx, s),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("the manager's identity may %s a Secret: %v", what, err)
		}
	}
}

// TestHungPrometheusHoldsUpNoOtherPlan: a plan whose Prometheus accepts connections and never
// answers gets TelemetryAvailable=False within its query budget, however many triggers it
// has, and a plan on a working Prometheus keeps following its telemetry meanwhile. A plan
// naming a URL outside the operator's allow-list is refused without a query.
func TestHungPrometheusHoldsUpNoOtherPlan(t *testing.T) {
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	hungURL := "http://" + hung.Addr().String()

	ns, exp, prom, _ := telemetryStackWith(t, func(dp *DegradationPlanReconciler) {
		dp.QueryBudget = 2 * time.Second
		dp.AllowedPrometheusURLs = []string{hungURL}
	})
	slow := newNamespace(t)
	create(t, qwen3(slow))
	plan := fastPlan(slow, hungURL)
	for i := 0; i < 8; i++ { // 9 distinct triggers: 90 s at the per-query timeout alone
		plan.Spec.Levels[0].When = append(plan.Spec.Levels[0].When, v1alpha1.Trigger{Signal: v1alpha1.SignalQueueDepth, Above: v1alpha1.Decimal(fmt.Sprint(10 + i))})
	}
	create(t, plan)
	refused := newNamespace(t)
	create(t, qwen3(refused))
	create(t, fastPlan(refused, "http://prometheus.elsewhere.example:9090"))
	create(t, fastPlan(ns, prom.URL()))

	got := waitPlanCondition(t, slow, "qwen3-degrade", v1alpha1.ConditionTelemetryAvailable, metav1.ConditionFalse, telemetry.ReasonPrometheusUnavailable)
	if c := planCondition(got, v1alpha1.ConditionTelemetryAvailable); strings.Count(c.Message, "prometheus unavailable") < 2 {
		t.Errorf("message %q: want every trigger reported unavailable", c.Message)
	}
	waitPlanCondition(t, refused, "qwen3-degrade", v1alpha1.ConditionTelemetryAvailable, metav1.ConditionFalse, telemetry.ReasonPrometheusURLNotAllowed)
	// The working plan follows its GPU while the hung one keeps failing.
	waitPlanCondition(t, ns, "qwen3-degrade", v1alpha1.ConditionTelemetryAvailable, metav1.ConditionTrue, telemetry.ReasonQueriesSucceeded)
	exp.SetGPUTemperature(enginePod, 95)
	eventually(t, "the working plan at L2", func() error {
		if p := getPlan(t, ns, "qwen3-degrade"); p.Status.Level != v1alpha1.LevelDisableThinking {
			return fmt.Errorf("level %d at 95 °C", p.Status.Level)
		}
		return nil
	})
}

func planCondition(p *v1alpha1.DegradationPlan, typ string) metav1.Condition {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}
