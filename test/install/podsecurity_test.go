package install

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

// TestPodSecurityLevels asks the API server's own PodSecurity admission which Pod Security
// Standard each workload satisfies: a Pod with each rendered pod spec is created (dry run) in
// namespaces that enforce restricted and baseline. The workloads are what the chart renders
// (manager, Redis, the helm test Pod) and what the operator renders for a QwenService of each
// engine type (engine, fallback, gateway). docs/security.md must say the same.
func TestPodSecurityLevels(t *testing.T) {
	for _, level := range []string{"restricted", "baseline"} {
		kubectl(t, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: pss-"+level+"\n  labels:\n"+
			"    pod-security.kubernetes.io/enforce: "+level+"\n    pod-security.kubernetes.io/enforce-version: latest\n"), "apply", "-f", "-")
	}
	workloads := map[string]corev1.PodSpec{}
	objs := objects(t, renderChart(t, chartDir, "qwen-operator", "x", "--set", "redis.enabled=true"))
	workloads["manager"] = convert[appsv1.Deployment](t, find(t, objs, "Deployment", "qwen-operator")).Spec.Template.Spec
	workloads["redis (chart)"] = convert[appsv1.Deployment](t, find(t, objs, "Deployment", "qwen-operator-redis")).Spec.Template.Spec
	workloads["helm test Pod"] = convert[corev1.Pod](t, find(t, objs, "Pod", "qwen-operator-test")).Spec
	for _, engine := range []v1alpha1.EngineType{v1alpha1.EngineVLLM, v1alpha1.EngineSGLang, v1alpha1.EngineSimulator} {
		qs := &v1alpha1.QwenService{
			ObjectMeta: metav1.ObjectMeta{Name: "qwen3", Namespace: "ai", UID: types.UID("3c1d8e52-0000-4000-8000-000000000013")},
			Spec: v1alpha1.QwenServiceSpec{
				Model:      v1alpha1.ModelSpec{Name: "Qwen/Qwen3-1.7B"},
				Engine:     v1alpha1.EngineSpec{Type: engine, HFTokenSecretRef: &v1alpha1.SecretKeyRef{Name: "hf", Key: "token"}},
				Fallback:   &v1alpha1.FallbackSpec{Model: v1alpha1.ModelSpec{Name: "Qwen/Qwen3-0.6B"}},
				Gateway:    v1alpha1.GatewaySpec{APIKeysSecretRef: &v1alpha1.LocalObjectRef{Name: "keys"}},
				ModelCache: &v1alpha1.ModelCacheSpec{ClaimName: "models"},
			},
		}
		children, err := render.Render(render.Inputs{Service: qs, Defaults: render.Defaults{VLLMImage: "v", SGLangImage: "s", SimulatorImage: "m", GatewayImage: "g"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range children {
			if d, ok := c.(*appsv1.Deployment); ok {
				component := d.Labels[render.LabelComponent]
				if component == render.ComponentGateway && engine != v1alpha1.EngineVLLM {
					continue // the gateway does not depend on the engine type
				}
				name := component + " (" + string(engine) + ")"
				if component == render.ComponentGateway {
					name = "gateway"
				}
				workloads[name] = d.Spec.Template.Spec
			}
		}
	}

	documented := securityDoc(t)
	for name, spec := range workloads {
		level, why := podSecurityLevel(t, spec)
		t.Logf("%-20s %-10s %s", name, level, why)
		if documented[name] != level {
			t.Errorf("%s satisfies Pod Security %q, docs/security.md says %q", name, level, documented[name])
		}
		delete(documented, name)
	}
	for name := range documented {
		t.Errorf("docs/security.md lists %s, which no test renders", name)
	}
}

// podSecurityLevel is the strictest level whose namespace admits a Pod with spec (dry run),
// and the admission's complaint about the next stricter one.
func podSecurityLevel(t *testing.T, spec corev1.PodSpec) (level, why string) {
	t.Helper()
	spec.ServiceAccountName = "" // the namespaces have only their default ServiceAccount
	for _, level := range []string{"restricted", "baseline"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pss-probe", Namespace: "pss-" + level}, Spec: spec}
		err := env.Client.Create(context.Background(), pod, client.DryRunAll)
		if err == nil {
			return level, why
		}
		if !strings.Contains(err.Error(), "violates PodSecurity") {
			t.Fatalf("dry run in pss-%s: %v", level, err)
		}
		if why == "" {
			why = err.Error()[strings.Index(err.Error(), "violates PodSecurity"):]
		}
	}
	return "privileged", why
}

// securityDoc reads the workload table of docs/security.md: workload -> level.
func securityDoc(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "docs/security.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| ([^|`]+?) \\| `(restricted|baseline|privileged)` \\|")
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			out[m[1]] = m[2]
		}
	}
	return out
}
