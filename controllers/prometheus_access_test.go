package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/telemetry"
	"github.com/qwenops/qwen-operator/internal/testutil/promtest"
)

// TestPrometheusCredentials runs the policy controllers against a real Prometheus that
// requires TLS and basic auth (its --web.config.file), directly and through a bearer-token
// proxy, for an SGLang service: the DegradationPlan reads it with basic auth from a Secret and
// the CA from a ConfigMap, the RateLimitPolicy with a bearer token and a CA from Secrets, both
// reading SGLang's queue metric. A rotated password is picked up at the next read (refused:
// PrometheusUnauthorized), and a missing ConfigMap is InvalidPrometheusConnection, naming it.
func TestPrometheusCredentials(t *testing.T) {
	ns := newNamespace(t)
	exp := promtest.NewExporter(t, ns)
	exp.SetSGLang(enginePod)
	exp.SetQueueDepth(enginePod, 7)
	prom := promtest.StartSecure(t, exp.Target())
	sec := prom.Security()
	proxyURL, proxyCA := promtest.BearerProxy(t, prom, "thanos-token")
	startPolicyManager(t, &offsetClock{}, "")
	qs := qwen3(ns)
	qs.Spec.Engine.Type = v1alpha1.EngineSGLang
	create(t, qs)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prom-basic"}, Type: corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": sec.Username, "password": sec.Password}})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prom-ca"}, Data: map[string]string{"ca.crt": string(sec.CA)}})
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "thanos"},
		StringData: map[string]string{"token": "thanos-token", "ca.crt": string(proxyCA)}})

	plan := degradePlan(ns)
	plan.Spec.Levels = []v1alpha1.DegradationLevel{{Level: 1, When: []v1alpha1.Trigger{{Signal: v1alpha1.SignalQueueDepth, Above: "5"}}}}
	plan.Spec.Prometheus = v1alpha1.PrometheusSpec{Interval: metav1.Duration{Duration: time.Second}, PrometheusConnection: v1alpha1.PrometheusConnection{
		URL:       prom.URL(),
		BasicAuth: &v1alpha1.PrometheusBasicAuth{Username: v1alpha1.KeySelector{Name: "prom-basic", Key: "username"}, Password: v1alpha1.KeySelector{Name: "prom-basic", Key: "password"}},
		TLSConfig: &v1alpha1.PrometheusTLSConfig{CA: &v1alpha1.CASource{ConfigMap: &v1alpha1.KeySelector{Name: "prom-ca", Key: "ca.crt"}}},
	}}
	create(t, plan)
	policy := limitsPolicy(ns, "qwen3-limits", 60)
	policy.Spec.Adaptive = []v1alpha1.AdaptiveRule{{Trigger: v1alpha1.Trigger{Signal: v1alpha1.SignalQueueDepth, Above: "5"}, Scale: "0.5"}}
	policy.Spec.Prometheus = &v1alpha1.PrometheusConnection{
		URL:           proxyURL,
		Authorization: &v1alpha1.PrometheusAuthorization{Credentials: v1alpha1.SecretKeyRef{Name: "thanos"}},
		TLSConfig:     &v1alpha1.PrometheusTLSConfig{CA: &v1alpha1.CASource{Secret: &v1alpha1.KeySelector{Name: "thanos", Key: "ca.crt"}}},
	}
	create(t, policy)

	waitPlanCondition(t, ns, plan.Name, v1alpha1.ConditionTelemetryAvailable, metav1.ConditionTrue, telemetry.ReasonQueriesSucceeded)
	eventually(t, "the plan at level 1 on SGLang's queue", func() error {
		p := getPlan(t, ns, plan.Name)
		if p.Status.Level != 1 || p.Status.Signals["QueueDepth"] != "7.0" {
			return fmt.Errorf("level %d, signals %v", p.Status.Level, p.Status.Signals)
		}
		return nil
	})
	waitPolicyCondition(t, ns, policy.Name, v1alpha1.ConditionEnforced, metav1.ConditionTrue, ReasonEnforced)
	eventually(t, "the policy halved through the bearer proxy", func() error {
		p := getPolicy(t, ns, policy.Name)
		if p.Status.AdaptiveScale != "0.5" || p.Status.Effective == nil || ptr.Deref(p.Status.Effective.Limits.RequestsPerMinute, 0) != 30 {
			return fmt.Errorf("adaptive scale %q, effective %+v", p.Status.AdaptiveScale, p.Status.Effective)
		}
		return nil
	})

	update(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prom-basic"}}, func(s *corev1.Secret) {
		s.Data["password"] = []byte("rotated-elsewhere")
	})
	waitPlanCondition(t, ns, plan.Name, v1alpha1.ConditionTelemetryAvailable, metav1.ConditionFalse, telemetry.ReasonPrometheusUnauthorized)
	if err := env.Client.Delete(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prom-ca"}}); err != nil {
		t.Fatal(err)
	}
	p := waitPlanCondition(t, ns, plan.Name, v1alpha1.ConditionTelemetryAvailable, metav1.ConditionFalse, telemetry.ReasonInvalidPrometheusConnection)
	if c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionTelemetryAvailable); c == nil || !strings.Contains(c.Message, "tlsConfig.ca.configMap: ConfigMap "+ns+"/prom-ca") {
		t.Errorf("condition %+v: want the message to name the ConfigMap", c)
	}
	if p.Status.Level != 1 {
		t.Errorf("level %d without telemetry, want 1 held", p.Status.Level)
	}
}
