package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// TestConfigMapWatch runs the gateway with --configmap against a real kube-apiserver + etcd:
// it serves the ConfigMap's config, follows an update, and keeps the last good config when an
// invalid one is written.
func TestConfigMapWatch(t *testing.T) {
	tools.Path(t, "kube-apiserver")
	tools.Path(t, "etcd")
	env := &envtest.Environment{BinaryAssetsDirectory: tools.EnvtestAssets()}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Stop() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	must(t, os.WriteFile(kubeconfig, env.KubeConfig, 0o600))
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	sim := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B"})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "qwen3-gateway", Namespace: "default"},
		Data: map[string]string{"config.yaml": gatewayConfig(sim.URL, 0)}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another ConfigMap in the namespace must not disturb the watch.
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "default"},
		Data: map[string]string{"config.yaml": "garbage"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	p := start(t, ctx, "--configmap", "default/qwen3-gateway", "--kubeconfig", kubeconfig)
	if resp, _ := chat(t, p.addr, false); resp.StatusCode != 200 {
		t.Fatalf("initial: %d", resp.StatusCode)
	}
	update := func(content string) {
		cm.Data["config.yaml"] = content
		var err error
		cm, err = cs.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
		must(t, err)
	}
	update(gatewayConfig(sim.URL, 4))
	if err := p.waitReload(t); err != nil {
		t.Fatal(err)
	}
	if _, body := chat(t, p.addr, false); !strings.Contains(body, "static-reply") {
		t.Fatalf("update not applied: %s", body)
	}
	update("upstream: {url: 'http://e', model: m}\nbreaker: {failureThreshold: -1}\n")
	if err := p.waitReload(t); err == nil || !strings.Contains(err.Error(), "breaker.failureThreshold") {
		t.Fatalf("invalid config: %v", err)
	}
	if _, body := chat(t, p.addr, false); !strings.Contains(body, "static-reply") {
		t.Fatalf("last good config not serving: %s", body)
	}
}
