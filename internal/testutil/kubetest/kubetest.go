// Package kubetest starts a real kube-apiserver + etcd (controller-runtime envtest) with the
// project's CRDs and the Gateway API CRDs installed, for integration tests.
package kubetest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/qwenops/qwen-operator/internal/render"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// Env is a running test control plane.
type Env struct {
	env *envtest.Environment
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is a controller-runtime client with Scheme.
	Client client.Client
	// Scheme knows the core kinds, the qwen-operator kinds and Gateway API v1.
	Scheme *runtime.Scheme
	// Kubeconfig is the path of a kubeconfig file for kubectl.
	Kubeconfig string
	// Kubectl is the path of the kubectl binary built with the envtest assets.
	Kubectl string
	dir     string
}

// CRDDirs returns the directories of CRD manifests to install: the project's and Gateway API's
// standard channel (from the Go module cache).
func CRDDirs() ([]string, error) {
	root, err := tools.RepoRoot()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		return nil, fmt.Errorf("kubetest: locating the gateway-api module (run `go mod download`): %w", err)
	}
	gw := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard")
	return []string{filepath.Join(root, "config", "crd", "bases"), gw}, nil
}

// Start starts the control plane. The caller must call Stop.
func Start() (*Env, error) {
	for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := tools.Lookup(name); err != nil {
			return nil, err
		}
	}
	dirs, err := CRDDirs()
	if err != nil {
		return nil, err
	}
	e := &Env{Scheme: render.NewScheme()}
	e.env = &envtest.Environment{
		BinaryAssetsDirectory: tools.EnvtestAssets(),
		CRDDirectoryPaths:     dirs,
		ErrorIfCRDPathMissing: true,
		CRDInstallOptions:     envtest.CRDInstallOptions{Scheme: e.Scheme},
	}
	if e.Config, err = e.env.Start(); err != nil {
		_ = e.env.Stop() // a failed CRD install leaves the control plane running
		return nil, fmt.Errorf("kubetest: starting kube-apiserver + etcd: %w", err)
	}
	if e.Client, err = client.New(e.Config, client.Options{Scheme: e.Scheme}); err != nil {
		_ = e.env.Stop()
		return nil, err
	}
	if e.dir, err = os.MkdirTemp("", "kubetest-"); err != nil {
		_ = e.env.Stop()
		return nil, err
	}
	user, err := e.env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		_ = e.Stop()
		return nil, err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		_ = e.Stop()
		return nil, err
	}
	e.Kubeconfig = filepath.Join(e.dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, kc, 0o600); err != nil {
		_ = e.Stop()
		return nil, err
	}
	e.Kubectl, _ = tools.Lookup("kubectl")
	return e, nil
}

// KubectlRun runs kubectl against the control plane and returns its combined output.
func (e *Env) KubectlRun(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(e.Kubectl, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Stop stops the control plane and removes its files.
func (e *Env) Stop() error {
	err := e.env.Stop()
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
	return err
}

// Main is a TestMain body for packages whose tests share one control plane: it starts it,
// stores it in *env, runs the tests, stops it and exits with the tests' code.
func Main(m interface{ Run() int }, env **Env) {
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	os.Exit(code)
}
