package v1alpha1_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/qwenops/qwen-operator/internal/testutil/kubetest"
)

// env is the real kube-apiserver + etcd every test in this package talks to.
var env *kubetest.Env

func TestMain(m *testing.M) {
	var err error
	env, err = kubetest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	os.Exit(code)
}
