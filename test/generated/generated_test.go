// Package generated checks that the files `make manifests generate` writes are up to date.
package generated

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// TestGeneratedFilesAreFresh regenerates CRDs, RBAC and deepcopy code into a temporary
// directory and compares them with the committed files.
func TestGeneratedFilesAreFresh(t *testing.T) {
	gen := tools.Path(t, "controller-gen")
	root, err := tools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(gen, args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("controller-gen %v: %v\n%s", args, err, out)
		}
	}
	run("object:headerFile=hack/boilerplate.go.txt", "paths=./api/...", "output:object:dir="+filepath.Join(tmp, "object"))
	run("crd", "paths=./api/...", "output:crd:artifacts:config="+filepath.Join(tmp, "crd"))
	compareDir(t, filepath.Join(tmp, "object"), filepath.Join(root, "api", "v1alpha1"))
	compareDir(t, filepath.Join(tmp, "crd"), filepath.Join(root, "config", "crd", "bases"))
	if _, err := os.Stat(filepath.Join(root, "controllers")); err == nil {
		run("rbac:roleName=qwen-operator-manager", "paths=./controllers/...", "output:rbac:artifacts:config="+filepath.Join(tmp, "rbac"))
		compareDir(t, filepath.Join(tmp, "rbac"), filepath.Join(root, "config", "rbac"))
	}
}

// compareDir checks that every file in fresh exists in committed with the same content.
func compareDir(t *testing.T, fresh, committed string) {
	t.Helper()
	entries, err := os.ReadDir(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatalf("controller-gen wrote nothing into %s", fresh)
	}
	for _, e := range entries {
		want, err := os.ReadFile(filepath.Join(fresh, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(committed, e.Name()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale or missing: run `make manifests generate` and commit the result", filepath.Join(committed, e.Name()))
		}
	}
}

// TestProjectFileListsTheKinds keeps the kubebuilder PROJECT file in step with the API.
func TestProjectFileListsTheKinds(t *testing.T) {
	root, err := tools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "PROJECT"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"domain: qwenops.io", "group: serving", "version: v1alpha1",
		"kind: QwenService", "kind: RateLimitPolicy", "kind: DegradationPlan", "repo: github.com/qwenops/qwen-operator"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("PROJECT lacks %q", want)
		}
	}
}
