package install

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// kustomizeNamespace is where config/default installs the manager.
const kustomizeNamespace = "qwen-operator-system"

// defaultKustomization returns the directory to build config/default from. While
// config/rbac/role.yaml does not exist yet (no controller declares RBAC; managerRole fails the
// test once one does), it is a copy of config/ with a rule-less manager ClusterRole in its place.
func defaultKustomization(t *testing.T) string {
	t.Helper()
	if managerRole(t) != nil {
		return repoPath(t, "config/default")
	}
	dir := filepath.Join(t.TempDir(), "config")
	copyDir(t, repoPath(t, "config"), dir)
	placeholder := "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: qwen-operator-manager\nrules: []\n"
	if err := os.WriteFile(filepath.Join(dir, "rbac", "role.yaml"), []byte(placeholder), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "default")
}

// TestKustomizeBuildsAndApplies runs `kubectl kustomize config/default` and
// `kubectl apply -k config/default` against the test API server, then checks every object
// exists and the manager's ServiceAccount holds its permissions.
func TestKustomizeBuildsAndApplies(t *testing.T) {
	dir := defaultKustomization(t)
	built := kustomizeBuild(t, dir)
	objs := objects(t, built)
	want := []string{
		"ClusterRole /qwen-operator-manager",
		"ClusterRole /qwen-operator-metrics-auth",
		"ClusterRole /qwen-operator-metrics-reader",
		"ClusterRoleBinding /qwen-operator-manager",
		"ClusterRoleBinding /qwen-operator-metrics-auth",
		"CustomResourceDefinition /degradationplans.serving.qwenops.io",
		"CustomResourceDefinition /qwenservices.serving.qwenops.io",
		"CustomResourceDefinition /ratelimitpolicies.serving.qwenops.io",
		"Deployment qwen-operator-system/qwen-operator",
		"Namespace /qwen-operator-system",
		"Role qwen-operator-system/qwen-operator-leader-election",
		"RoleBinding qwen-operator-system/qwen-operator-leader-election",
		"Service qwen-operator-system/qwen-operator-metrics",
		"ServiceAccount qwen-operator-system/qwen-operator",
	}
	if got := ids(objs); !slices.Equal(got, want) {
		t.Fatalf("kubectl kustomize config/default:\n got %v\nwant %v", got, want)
	}
	checkManagerPod(t, convert[appsv1.Deployment](t, find(t, objs, "Deployment", "qwen-operator")))

	kubectl(t, nil, "apply", "-k", dir)
	kubectl(t, []byte(built), "get", "-f", "-")
	sa := "system:serviceaccount:" + kustomizeNamespace + ":qwen-operator"
	checkCan(t, sa, kustomizeNamespace, true, "create", "leases.coordination.k8s.io")
	checkCan(t, sa, "", true, "create", "tokenreviews.authentication.k8s.io")
	role := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "qwen-operator-manager"))
	checkRules(t, sa, role.Rules)
}

// TestKustomizeMatchesChart checks that config/default installs what the chart installs with
// its default values and the release name qwen-operator: the same objects with the same rules,
// bindings, ports and manager pod (labels aside).
func TestKustomizeMatchesChart(t *testing.T) {
	kust := map[string]*unstructured.Unstructured{}
	for _, o := range objects(t, kustomizeBuild(t, defaultKustomization(t))) {
		if o.GetKind() != "Namespace" { // Helm's --create-namespace makes it instead
			kust[id(o)] = o
		}
	}
	chart := map[string]*unstructured.Unstructured{}
	for _, o := range objects(t, renderChart(t, chartDir, "qwen-operator", kustomizeNamespace, "--skip-tests")) {
		chart[id(o)] = o
	}
	if k, c := sortedKeys(kust), sortedKeys(chart); !slices.Equal(k, c) {
		t.Fatalf("different objects:\nkustomize %v\nchart     %v", k, c)
	}
	for key, k := range kust {
		c := chart[key]
		var kv, cv any
		switch k.GetKind() {
		case "CustomResourceDefinition":
			kv, cv = k.Object["spec"], c.Object["spec"]
		case "ClusterRole", "Role":
			kv, cv = convert[rbacv1.ClusterRole](t, k).Rules, convert[rbacv1.ClusterRole](t, c).Rules
			if len(kv.([]rbacv1.PolicyRule)) == 0 && len(cv.([]rbacv1.PolicyRule)) == 0 {
				continue
			}
		case "ClusterRoleBinding", "RoleBinding":
			kb, cb := convert[rbacv1.ClusterRoleBinding](t, k), convert[rbacv1.ClusterRoleBinding](t, c)
			kv, cv = []any{kb.RoleRef, kb.Subjects}, []any{cb.RoleRef, cb.Subjects}
		case "Service":
			kv, cv = convert[corev1.Service](t, k).Spec.Ports, convert[corev1.Service](t, c).Spec.Ports
		case "Deployment":
			kv, cv = managerPod(t, k), managerPod(t, c)
		case "ServiceAccount":
			continue
		default:
			t.Errorf("%s: no comparison for this kind", key)
			continue
		}
		if ky, cy := mustYAML(t, kv), mustYAML(t, cv); ky != cy {
			t.Errorf("%s differs:\n--- kustomize\n%s\n--- chart\n%s", key, ky, cy)
		}
	}
}

// managerPod is the part of the manager Deployment both installs must agree on.
func managerPod(t *testing.T, u *unstructured.Unstructured) any {
	t.Helper()
	d := convert[appsv1.Deployment](t, u)
	p := d.Spec.Template.Spec
	c := p.Containers[0]
	return map[string]any{
		"replicas": d.Spec.Replicas, "serviceAccountName": p.ServiceAccountName, "podSecurityContext": p.SecurityContext,
		"terminationGracePeriodSeconds": p.TerminationGracePeriodSeconds, "volumes": p.Volumes,
		"name": c.Name, "image": c.Image, "imagePullPolicy": c.ImagePullPolicy, "command": c.Command, "args": c.Args,
		"ports": c.Ports, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "resources": c.Resources,
		"securityContext": c.SecurityContext, "volumeMounts": c.VolumeMounts,
	}
}

func id(o *unstructured.Unstructured) string {
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
