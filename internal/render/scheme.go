package render

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// NewScheme returns a scheme of every kind the operator reads or renders: the core kinds, the
// qwen-operator kinds and Gateway API v1 (the BackendTrafficPolicy is rendered unstructured).
// The manager, the test control plane and the demo all build their clients with it.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	utilruntime.Must(gatewayv1.Install(s))
	return s
}
