package stack

import (
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
	"github.com/qwenops/qwen-operator/internal/telemetry"
)

func testState(t *testing.T) *State {
	ports, err := pickPorts(false)
	if err != nil {
		t.Fatal(err)
	}
	return &State{Dir: t.TempDir(), Root: "/repo", Bin: "/repo/bin", Namespace: "ai", Name: "qwen3",
		Model: "Qwen3-1.7B", FallbackModel: "Qwen3-0.6B", Ports: ports}
}

// TestPodNamesMatchSignalPresets guards the link between the names the demo gives its
// processes in metrics and the pods the operator's queries select.
func TestPodNamesMatchSignalPresets(t *testing.T) {
	s := testState(t)
	qs := &v1alpha1.QwenService{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name}}
	target := telemetry.Target{Namespace: s.Namespace, Service: s.Name, Engine: render.EngineName(qs), Gateway: render.GatewayName(qs)}
	for pod, re := range map[string]string{
		s.enginePod():  telemetry.Substitute("$pods", target),
		s.gatewayPod(): telemetry.Substitute("$gatewayPods", target),
	} {
		if !regexp.MustCompile("^(?:" + strings.ReplaceAll(re, `\\`, `\`) + ")$").MatchString(pod) {
			t.Errorf("pod %s does not match the preset regex %s", pod, re)
		}
	}
	cfg := s.prometheusConfig()
	for _, want := range []string{s.enginePod(), s.fallbackPod(), s.gatewayPod(), "honor_labels: true"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("prometheus config lacks %s:\n%s", want, cfg)
		}
	}
	var parsed map[string]any
	if err := yaml.Unmarshal([]byte(cfg), &parsed); err != nil {
		t.Fatalf("prometheus config is not YAML: %v", err)
	}
}

// TestManifests renders the demo manifests and decodes them strictly into the API types, so
// that a misspelt field fails here and not only against the API server.
func TestManifests(t *testing.T) {
	s := testState(t)
	ms, err := s.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	var qs v1alpha1.QwenService
	var rlp v1alpha1.RateLimitPolicy
	var dp v1alpha1.DegradationPlan
	for name, dst := range map[string]any{"10-qwenservice.yaml": &qs, "20-ratelimitpolicy.yaml": &rlp, "30-degradationplan.yaml": &dp} {
		if err := yaml.UnmarshalStrict(ms[name], dst); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, ms[name])
		}
	}
	if qs.Spec.Engine.Type != v1alpha1.EngineSimulator || qs.Spec.Gateway.Redis == nil || !strings.HasPrefix(qs.Spec.Gateway.Redis.Address, "127.0.0.1:") {
		t.Errorf("QwenService %+v", qs.Spec)
	}
	if dp.Spec.Prometheus.URL != s.PrometheusURL() || dp.Spec.StaticResponse.Message != "服务繁忙，请稍后再试" || dp.Spec.CircuitBreaker.FailureThreshold != 5 {
		t.Errorf("DegradationPlan %+v", dp.Spec)
	}
	if ptr.Deref(rlp.Spec.Limits.RequestsPerMinute, 0) != 100 || len(rlp.Spec.Schedules) != 2 || rlp.Spec.Timezone != "Asia/Shanghai" {
		t.Errorf("RateLimitPolicy %+v", rlp.Spec)
	}
	if len(ms) != 4 {
		t.Errorf("manifests %d, want namespace + 3", len(ms))
	}
}

func TestDeploymentStatus(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "qwen3-engine", Generation: 3}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}}
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	up := deploymentStatus(d, true, t0)
	if up.ObservedGeneration != 3 || up.ReadyReplicas != 2 || up.AvailableReplicas != 2 || up.Conditions[0].Type != appsv1.DeploymentAvailable || up.Conditions[0].Status != corev1.ConditionTrue {
		t.Fatalf("healthy: %+v", up)
	}
	d.Status = up
	again := deploymentStatus(d, true, t0.Add(time.Minute))
	if !deploymentStatusEqual(up, again) || !again.Conditions[0].LastTransitionTime.Equal(&up.Conditions[0].LastTransitionTime) {
		t.Fatalf("an unchanged status changed: %+v", again)
	}
	down := deploymentStatus(d, false, t0.Add(time.Minute))
	if deploymentStatusEqual(up, down) || down.ReadyReplicas != 0 || down.UnavailableReplicas != 2 || down.Conditions[0].Status != corev1.ConditionFalse ||
		!down.Conditions[0].LastTransitionTime.Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("unhealthy: %+v", down)
	}
}

func TestPickPortsDistinct(t *testing.T) {
	for _, preferred := range []bool{true, false} {
		p, err := pickPorts(preferred)
		if err != nil {
			t.Fatal(err)
		}
		ports := []int{p.APIServer, p.Gateway, p.Engine, p.Fallback, p.Redis, p.Prometheus, p.Agent, p.EngineService, p.FallbackService, p.ManagerProbe, p.ManagerMetrics}
		seen := map[int]bool{}
		for _, port := range ports {
			if port <= 0 || seen[port] {
				t.Fatalf("ports %+v", p)
			}
			seen[port] = true
		}
	}
}

func TestInstructions(t *testing.T) {
	s := testState(t)
	got := s.Instructions()
	for _, want := range []string{
		s.GatewayURL(), s.Kubeconfig(), "source " + s.Dir + "/env",
		"curl -N $QWEN_URL/chat/completions -H 'Content-Type: application/json'",
		"kubectl patch rlp qwen3-limits", "kubectl get dp -w", "/repo/hack/demo/gpu-temp 92", "服务繁忙，请稍后再试",
		"failure-injection-rate", "/repo/bin/qwen-demo --dir " + s.Dir + " kill manager",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("instructions lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "$CHAT") || strings.Contains(got, "$GPUTEMP") || strings.Contains(got, "%!") {
		t.Errorf("unexpanded placeholder:\n%s", got)
	}
}
