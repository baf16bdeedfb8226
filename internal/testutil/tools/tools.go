// Package tools finds the external programs the tests run (kube-apiserver, etcd, kubectl,
// llm-d-inference-sim, redis-server, prometheus, helm, controller-gen). It never skips: a
// missing program fails the test with the command that installs it.
package tools

import (
	"bufio"
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
// Known names: kube-apiserver, etcd, kubectl, llm-d-inference-sim, controller-gen, helm,
// redis-server, redis-sentinel, redis-cli, prometheus, curl. Environment overrides: KUBEBUILDER_ASSETS, QWEN_SIM,
// CONTROLLER_GEN, HELM.
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
	case "llm-d-inference-sim":
		candidates = append(candidates, os.Getenv("QWEN_SIM"), filepath.Join(cache, "llm-d-inference-sim-"+v["SIM_VERSION"], name))
	case "controller-gen":
		candidates = append(candidates, os.Getenv("CONTROLLER_GEN"), filepath.Join(cache, "controller-gen-v"+v["CONTROLLER_TOOLS_VERSION"], name))
	case "helm":
		candidates = append(candidates, os.Getenv("HELM"), filepath.Join(cache, "helm-v"+v["HELM_VERSION"], name))
	case "redis-server", "redis-sentinel", "redis-cli", "prometheus", "curl", "valgrind", "callgrind_control":
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		return "", fmt.Errorf("%s not found in PATH; install it with: %s (or apt-get install -y %s)", name, SetupHint, name)
	default:
		return "", fmt.Errorf("tools: unknown program %q", name)
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
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
