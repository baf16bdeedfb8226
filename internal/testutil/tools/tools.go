// Package tools finds the external programs the tests run (kube-apiserver, etcd, kubectl,
// llm-d-inference-sim, redis-server, prometheus, helm, controller-gen). It never skips: a
// missing program fails the test with the command that installs it.
package tools

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// SetupHint is the command that installs every tool.
const SetupHint = "make setup   (runs hack/setup.sh: apt packages, Go tools, envtest binaries, the simulator)"

var (
	versionsOnce sync.Once
	versions     map[string]string
	versionsErr  error
)

// RepoRoot returns the directory holding the module's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/qwenops/qwen-operator") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("tools: go.mod of github.com/qwenops/qwen-operator not found above the working directory")
		}
		dir = parent
	}
}

// Versions returns the pinned versions from hack/versions.sh (the one place they are written).
func Versions() (map[string]string, error) {
	versionsOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			versionsErr = err
			return
		}
		f, err := os.Open(filepath.Join(root, "hack", "versions.sh"))
		if err != nil {
			versionsErr = err
			return
		}
		defer f.Close()
		versions = map[string]string{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") || strings.Contains(line, "$") {
				continue
			}
			if k, v, ok := strings.Cut(line, "="); ok {
				versions[k] = v
			}
		}
		versionsErr = sc.Err()
	})
	return versions, versionsErr
}

// CacheDir is where hack/setup.sh caches built tools: $QWEN_CACHE, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/qwen-operator.
func CacheDir() string {
	if d := os.Getenv("QWEN_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "qwen-operator")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "qwen-operator")
}

// Lookup returns the path of a program, or an error that names the install command.
// Known names: kube-apiserver, etcd, kubectl, kubelet, kube-proxy, kube-controller-manager,
// kube-scheduler, coredns, llm-d-inference-sim, controller-gen, helm, and the Debian programs
// redis-server, redis-sentinel, redis-cli, prometheus, curl, nginx, containerd, ctr, runc, iptables, ip.
// Environment overrides: KUBEBUILDER_ASSETS, QWEN_SIM, CONTROLLER_GEN, HELM, QWEN_KUBE_BIN, QWEN_COREDNS.
func Lookup(name string) (string, error) {
	v, err := Versions()
	if err != nil {
		return "", err
	}
	cache := CacheDir()
	var candidates []string
	switch name {
	case "kube-apiserver", "etcd", "kubectl":
		candidates = append(candidates, filepath.Join(EnvtestAssets(), name))
	case "kubelet", "kube-proxy", "kube-controller-manager", "kube-scheduler":
		candidates = append(candidates, filepath.Join(KubeBinDir(), name))
	case "coredns":
		candidates = append(candidates, os.Getenv("QWEN_COREDNS"), filepath.Join(cache, "coredns-"+v["COREDNS_VERSION"], name))
	case "llm-d-inference-sim":
		candidates = append(candidates, os.Getenv("QWEN_SIM"), filepath.Join(cache, "llm-d-inference-sim-"+v["SIM_VERSION"], name))
	case "controller-gen":
		candidates = append(candidates, os.Getenv("CONTROLLER_GEN"), filepath.Join(cache, "controller-gen-v"+v["CONTROLLER_TOOLS_VERSION"], name))
	case "helm":
		candidates = append(candidates, os.Getenv("HELM"), filepath.Join(cache, "helm-v"+v["HELM_VERSION"], name))
	case "redis-server", "redis-sentinel", "redis-cli", "prometheus", "curl", "nginx", "containerd", "ctr", "runc", "iptables", "ip", "valgrind", "callgrind_control":
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/sbin"} { // root's programs, when PATH lacks them
			if p := filepath.Join(dir, name); isExecutable(p) {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s not found in PATH; install it with: %s (or apt-get install -y %s)", name, SetupHint, debianPackage[name])
	default:
		return "", fmt.Errorf("tools: unknown program %q", name)
	}
	for _, c := range candidates {
		if c != "" && isExecutable(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("%s not found (looked in %s); build it with: %s", name, strings.Join(nonEmpty(candidates), ", "), SetupHint)
}

// EnvtestAssets is the directory with kube-apiserver, etcd and kubectl: $KUBEBUILDER_ASSETS
// or the cache directory setup.sh links them into.
func EnvtestAssets() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	v, _ := Versions()
	return filepath.Join(CacheDir(), "envtest-"+v["K8S_VERSION"]+"-etcd-"+v["ETCD_VERSION"])
}

// KubeBinDir is where hack/setup.sh builds the kube binaries: $QWEN_KUBE_BIN, else
// <cache>/kubernetes-<version>.
func KubeBinDir() string {
	if d := os.Getenv("QWEN_KUBE_BIN"); d != "" {
		return d
	}
	v, _ := Versions()
	return filepath.Join(CacheDir(), "kubernetes-"+v["K8S_VERSION"])
}

// debianPackage is the Debian package of each program found in PATH.
var debianPackage = map[string]string{
	"redis-server": "redis-server", "redis-sentinel": "redis-sentinel", "redis-cli": "redis-tools",
	"prometheus": "prometheus", "curl": "curl", "nginx": "nginx", "containerd": "containerd", "ctr": "containerd",
	"runc": "runc", "iptables": "iptables", "ip": "iproute2", "valgrind": "valgrind", "callgrind_control": "valgrind",
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Path returns the program's path or fails the test with the install command.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	p, err := Lookup(name)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// CRDs of other projects the tests install, by the module that ships them (pinned in
// hack/versions.sh, downloaded by hack/setup.sh) and the file's path inside it.
var crdFiles = map[string]struct{ module, version, path string }{
	"servicemonitors.monitoring.coreos.com": {"github.com/prometheus-operator/prometheus-operator", "PROMETHEUS_OPERATOR_VERSION",
		"example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"},
	"podmonitors.monitoring.coreos.com": {"github.com/prometheus-operator/prometheus-operator", "PROMETHEUS_OPERATOR_VERSION",
		"example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml"},
	"backendtrafficpolicies.gateway.envoyproxy.io": {"github.com/envoyproxy/gateway", "ENVOY_GATEWAY_VERSION",
		"charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_backendtrafficpolicies.yaml"},
}

// CRDFile returns the path of a known CRD (by name, such as servicemonitors.monitoring.coreos.com)
// in the Go module cache, or fails the test with the install command. The CRDs come from the
// projects' own Go modules at the versions hack/versions.sh pins, so the tests check rendered
// objects against the real schemas.
func CRDFile(tb testing.TB, name string) string {
	tb.Helper()
	f, ok := crdFiles[name]
	if !ok {
		tb.Fatalf("tools: unknown CRD %q", name)
	}
	v, err := Versions()
	if err != nil {
		tb.Fatal(err)
	}
	mod := f.module + "@v" + v[f.version]
	out, err := exec.Command("go", "mod", "download", "-json", mod).Output()
	var info struct{ Dir, Error string }
	if err == nil {
		err = json.Unmarshal(out, &info)
	}
	if err != nil || info.Dir == "" {
		tb.Fatalf("tools: module %s is not in the module cache (%v %s); fetch it with: %s", mod, err, info.Error, SetupHint)
	}
	return filepath.Join(info.Dir, filepath.FromSlash(f.path))
}
