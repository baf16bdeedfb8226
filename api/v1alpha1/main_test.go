package v1alpha1_test

import (
	"testing"

	"github.com/qwenops/qwen-operator/internal/testutil/kubetest"
)

// env is the real kube-apiserver + etcd every test in this package talks to.
var env *kubetest.Env

func TestMain(m *testing.M) { kubetest.Main(m, &env) }
