package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/qwenops/qwen-operator/internal/render"
	"github.com/qwenops/qwen-operator/internal/testutil/kubetest"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// env is the real kube-apiserver + etcd of the package; the manager below runs against it for
// the whole package, as the operator would.
var env *kubetest.Env

// reconciler is the instance the manager runs; tests call its Reconcile directly to check
// what it returns.
var reconciler *QwenServiceReconciler

// testDefaults are the images the manager of the tests fills in.
var testDefaults = render.Defaults{
	VLLMImage:      "vllm/vllm-openai:test",
	SGLangImage:    "lmsysorg/sglang:test",
	SimulatorImage: "ghcr.io/llm-d/llm-d-inference-sim:test",
	GatewayImage:   "ghcr.io/qwenops/qwen-gateway:test",
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	var err error
	if env, err = kubetest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	var stopped <-chan error
	reconciler, stopped, err = startManager(ctx, env.Config, env.Client)
	if err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	cancel()
	select {
	case err := <-stopped:
		if err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "manager did not stop within 30s")
	}
	return code
}

// operatorUser is the identity the manager of the tests runs as: bound to nothing but the
// generated ClusterRole config/rbac/role.yaml, so the tests prove the RBAC markers suffice.
const operatorUser = "system:serviceaccount:qwen-system:qwen-operator"

// startManager runs a manager with the QwenService reconciler until ctx ends, as
// operatorUser of the API server that admin administers; the channel receives its exit error.
func startManager(ctx context.Context, admin *rest.Config, adminClient client.Client) (*QwenServiceReconciler, <-chan error, error) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	if err := bindOperatorRole(ctx, adminClient); err != nil {
		return nil, nil, err
	}
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: operatorUser}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 render.NewScheme(),
		Cache:                  CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, nil, err
	}
	if err := SetupIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, nil, err
	}
	r := &QwenServiceReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("qwen-operator"), Defaults: testDefaults,
		ConflictRecheck: time.Second}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return nil, nil, fmt.Errorf("the manager's cache did not sync")
	}
	return r, done, nil
}

// bindOperatorRole installs the generated ClusterRole and binds it to operatorUser.
func bindOperatorRole(ctx context.Context, adminClient client.Client) error {
	root, err := tools.RepoRoot()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	if err != nil {
		return err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(b, role); err != nil {
		return err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: operatorUser}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := adminClient.Create(ctx, o); err != nil {
			return fmt.Errorf("installing %s: %w", o.GetName(), err)
		}
	}
	return nil
}

// zapLevel keeps the manager quiet (errors only) unless QWEN_TEST_LOG=debug.
func zapLevel() zapcore.Level {
	if os.Getenv("QWEN_TEST_LOG") == "debug" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}
