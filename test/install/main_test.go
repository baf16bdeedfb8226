// Package install checks the ways qwen-operator is installed: the Helm chart
// (charts/qwen-operator), the kustomize tree (config/default) and the Grafana dashboard
// (config/grafana). Everything runs the real tools: helm, kubectl, a real kube-apiserver +
// etcd, and prometheus for the dashboard's queries.
package install

import (
	"testing"

	"github.com/qwenops/qwen-operator/internal/testutil/kubetest"
)

// env is the real kube-apiserver + etcd (with the project's CRDs) the install tests apply to.
var env *kubetest.Env

func TestMain(m *testing.M) { kubetest.Main(m, &env) }
