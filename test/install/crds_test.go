package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// helmKube runs helm against the test API server.
func helmKube(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return helmRun(t, append(args, "--kubeconfig", env.Kubeconfig)...)
}

// TestChartCRDLifecycle runs the real helm against the test API server through the CRD story
// docs/upgrade.md tells: the CRDs the test server already has stand for the ones an earlier
// chart installed from crds/ (owned by no release); a release adopts them with
// --take-ownership, a chart whose CRD changed updates it on `helm upgrade`, and
// `helm uninstall` keeps them and the objects of their kinds.
func TestChartCRDLifecycle(t *testing.T) {
	const ns, release, crd = "qwen-crds", "qwen-crds", "qwenservices.serving.qwenops.io"
	// The CRDs go back to owned by no release, as the test found them (for -count > 1 and for
	// the tests after it), whatever step failed.
	t.Cleanup(func() {
		_, _ = helmKube(t, "uninstall", release, "-n", ns)
		for _, name := range []string{"qwenservices", "ratelimitpolicies", "degradationplans"} {
			name += ".serving.qwenops.io"
			_, _ = env.KubectlRun(nil, "annotate", "crd", name, "meta.helm.sh/release-name-", "meta.helm.sh/release-namespace-", "helm.sh/resource-policy-")
			_, _ = env.KubectlRun(nil, "label", "crd", name, "app.kubernetes.io/managed-by-")
		}
	})

	out, err := helmKube(t, "install", release, repoPath(t, chartDir), "-n", ns, "--create-namespace")
	if err == nil || !strings.Contains(out, "invalid ownership metadata") || !strings.Contains(out, "CustomResourceDefinition") {
		t.Fatalf("installing over CRDs no release owns: err %v, want the ownership error\n%s", err, out)
	}
	if out, err := helmKube(t, "install", release, repoPath(t, chartDir), "-n", ns, "--create-namespace", "--take-ownership"); err != nil {
		t.Fatalf("helm install --take-ownership: %v\n%s", err, out)
	}
	live := crdObject(t, crd)
	if live.Metadata.Annotations["meta.helm.sh/release-name"] != release || live.Metadata.Annotations["helm.sh/resource-policy"] != "keep" ||
		live.Metadata.Labels["app.kubernetes.io/managed-by"] != "Helm" {
		t.Errorf("adopted CRD metadata %+v: want release %s, resource-policy keep, managed-by Helm", live.Metadata, release)
	}

	// A chart whose CRD gained a printer column: helm upgrade brings it, and the original takes it away.
	chart := filepath.Join(t.TempDir(), "qwen-operator")
	copyDir(t, repoPath(t, chartDir), chart)
	file := filepath.Join(chart, "files", "crds", "serving.qwenops.io_qwenservices.yaml")
	var doc map[string]any
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	version := doc["spec"].(map[string]any)["versions"].([]any)[0].(map[string]any)
	version["additionalPrinterColumns"] = append(version["additionalPrinterColumns"].([]any),
		map[string]any{"name": "Upgraded", "type": "string", "jsonPath": ".spec.model.servedName"})
	if b, err = yaml.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		chart string
		want  bool
	}{{chart, true}, {repoPath(t, chartDir), false}} {
		if out, err := helmKube(t, "upgrade", release, step.chart, "-n", ns); err != nil {
			t.Fatalf("helm upgrade: %v\n%s", err, out)
		}
		if got := crdObject(t, crd).hasColumn("Upgraded"); got != step.want {
			t.Errorf("after helm upgrade to %s the CRD has the new column: %v, want %v", step.chart, got, step.want)
		}
	}

	// helm uninstall keeps the CRDs and the QwenServices; the rest of the release goes.
	kubectl(t, []byte("apiVersion: serving.qwenops.io/v1alpha1\nkind: QwenService\nmetadata: {name: kept, namespace: "+ns+"}\nspec:\n  model: {name: Qwen/Qwen3-0.6B}\n"), "apply", "-f", "-")
	if out, err := helmKube(t, "uninstall", release, "-n", ns); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}
	for _, crd := range []string{"qwenservices", "ratelimitpolicies", "degradationplans"} {
		kubectl(t, nil, "get", "crd", crd+".serving.qwenops.io")
	}
	kubectl(t, nil, "-n", ns, "get", "qwenservice", "kept")
	if out, err := env.KubectlRun(nil, "-n", ns, "get", "deployment", release); err == nil || !strings.Contains(out, "NotFound") {
		t.Errorf("the manager Deployment outlived helm uninstall: %v %s", err, out)
	}
}

// crd is the part of a live CRD the lifecycle test reads.
type crd struct {
	Metadata struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Versions []struct {
			AdditionalPrinterColumns []struct {
				Name string `json:"name"`
			} `json:"additionalPrinterColumns"`
		} `json:"versions"`
	} `json:"spec"`
}

func crdObject(t *testing.T, name string) crd {
	t.Helper()
	var c crd
	if err := yaml.Unmarshal([]byte(kubectl(t, nil, "get", "crd", name, "-o", "json")), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c crd) hasColumn(name string) bool {
	for _, v := range c.Spec.Versions {
		for _, col := range v.AdditionalPrinterColumns {
			if col.Name == name {
				return true
			}
		}
	}
	return false
}
