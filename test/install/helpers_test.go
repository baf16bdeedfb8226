package install

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// Paths inside the repository.
const (
	chartDir       = "charts/qwen-operator"
	chartCRDDir    = "charts/qwen-operator/files/crds"
	crdDir         = "config/crd/bases"
	roleFile       = "config/rbac/role.yaml"
	chartRoleFile  = "charts/qwen-operator/files/manager-role.yaml"
	dashboardFile  = "config/grafana/qwen-operator-dashboard.json"
	chartDashboard = "charts/qwen-operator/files/qwen-operator-dashboard.json"
	syncHint       = "run `make manifests` (or `make chart-sync`) and commit the result"
)

// allFeatures turns every optional part of the chart on.
var allFeatures = []string{
	"--set", "serviceMonitor.enabled=true",
	"--set", "serviceMonitor.labels.release=kube-prometheus-stack",
	"--set", "podMonitor.enabled=true",
	"--set", "podMonitor.labels.release=kube-prometheus-stack",
	"--set", "grafanaDashboard.enabled=true",
	"--set", "redis.enabled=true",
	"--set", "redis.passwordSecret.name=qwen-redis",
	"--set", "metrics.readerSubjects[0].kind=ServiceAccount",
	"--set", "metrics.readerSubjects[0].name=prometheus",
	"--set", "metrics.readerSubjects[0].namespace=monitoring",
}

// repoRoot returns the repository's root directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := tools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// repoPath joins rel to the repository root.
func repoPath(t testing.TB, rel string) string {
	return filepath.Join(repoRoot(t), filepath.FromSlash(rel))
}

// helm runs helm with its cache, config and data homes in a temporary directory, so the
// tests neither read nor write the user's helm state, and returns stdout.
func helm(t testing.TB, args ...string) string {
	t.Helper()
	out, err := helmRun(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// helmRun runs helm like helm does, but returns the error. `helm template` renders for the
// Kubernetes version the tests run (Chart.yaml's kubeVersion is checked against it; a helm
// built without version stamping would assume Kubernetes 1.20).
func helmRun(t testing.TB, args ...string) (string, error) {
	t.Helper()
	if len(args) > 0 && args[0] == "template" && !slices.Contains(args, "--kube-version") {
		v, err := tools.Versions()
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "--kube-version", "v"+v["K8S_VERSION"])
	}
	home := t.TempDir()
	cmd := exec.Command(tools.Path(t, "helm"), args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// renderChart renders chart (a directory) as release name in namespace with extra helm args.
func renderChart(t testing.TB, chart, name, namespace string, extra ...string) string {
	t.Helper()
	args := append([]string{"template", name, chart, "--namespace", namespace}, extra...)
	return helm(t, args...)
}

// kubectl runs kubectl against the test API server and fails the test on error.
func kubectl(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	out, err := env.KubectlRun(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// kustomizeBuild runs `kubectl kustomize dir`.
func kustomizeBuild(t testing.TB, dir string) string {
	t.Helper()
	out, err := exec.Command(env.Kubectl, "kustomize", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	return string(out)
}

// createNamespace creates a namespace for one test's objects.
func createNamespace(t testing.TB, name string) {
	t.Helper()
	kubectl(t, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+name+"\n"), "apply", "-f", "-")
}

// objects decodes a multi-document YAML stream, dropping empty documents.
func objects(t testing.TB, manifest string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("decoding manifest: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// find returns the one object of kind named name, or fails the test.
func find(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %q among %v", kind, name, ids(objs))
	return nil
}

// ids lists "Kind namespace/name" of each object, sorted.
func ids(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

// convert turns an unstructured object into a typed one.
func convert[T any](t testing.TB, u *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
		t.Fatalf("converting %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return &v
}

// rbacMarker finds kubebuilder RBAC markers, which make controller-gen write config/rbac/role.yaml.
var rbacMarker = regexp.MustCompile(`\+kubebuilder:rbac:`)

// managerRole returns config/rbac/role.yaml, or nil while no controller declares RBAC yet. Once a
// Go file under controllers/ carries a +kubebuilder:rbac marker, a missing role.yaml fails the test.
func managerRole(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, roleFile))
	if err == nil {
		return b
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var marked []string
	dir := repoPath(t, "controllers")
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		if src, err := os.ReadFile(path); err == nil && rbacMarker.Match(src) {
			marked = append(marked, path)
		}
		return nil
	})
	if len(marked) > 0 {
		t.Fatalf("%s is missing but %v declare RBAC markers: %s", roleFile, marked, syncHint)
	}
	t.Logf("%s does not exist yet (no controller declares RBAC): the manager ClusterRole has no rules", roleFile)
	return nil
}

// roleRules parses the rules of a controller-gen ClusterRole file.
func roleRules(t testing.TB, b []byte) []rbacv1.PolicyRule {
	t.Helper()
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(b, &role); err != nil {
		t.Fatalf("parsing the manager role: %v", err)
	}
	return role.Rules
}

// copyDir copies the regular files of src into dst recursively.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
