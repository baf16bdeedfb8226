package render

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// Render returns the desired children of in.Service in apply order, each with its
// TypeMeta, labels and controller reference set. A spec that cannot be rendered returns an
// *InvalidError and no objects.
func Render(in Inputs) ([]client.Object, error) {
	if err := Validate(in); err != nil {
		return nil, err
	}
	qs := in.Service
	cfg := GatewayConfig(in)
	if err := validateGatewayConfig(cfg); err != nil {
		return nil, err
	}
	config, err := gatewayconfig.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("rendering the gateway config: %w", err)
	}
	objs := []client.Object{
		gatewayServiceAccount(qs),
		gatewayRole(qs),
		gatewayRoleBinding(qs),
		gatewayConfigMap(qs, config),
	}
	if pvc := cachePVC(qs); pvc != nil {
		objs = append(objs, pvc)
	}
	primary := primaryRole(qs)
	objs = append(objs, engineDeployment(qs, primary, in.Defaults), engineService(qs, primary))
	if qs.Spec.Fallback != nil {
		fb := fallbackRole(qs)
		if !FallbackShared(qs) {
			objs = append(objs, engineDeployment(qs, fb, in.Defaults))
		}
		objs = append(objs, engineService(qs, fb))
	}
	objs = append(objs, gatewayDeployment(qs, in.Defaults), gatewayService(qs), gatewayPDB(qs))
	if np := networkPolicy(qs); np != nil {
		objs = append(objs, np)
	}
	edge := Edge(Enforced(in.Policy))
	if x := qs.Spec.Exposure; x != nil {
		if x.Ingress != nil {
			objs = append(objs, ingress(qs, edge))
		}
		if x.HTTPRoute != nil {
			objs = append(objs, httpRoute(qs))
			if in.BackendTrafficPolicyServed {
				objs = append(objs, backendTrafficPolicy(qs, edge))
			}
		}
	}
	return objs, nil
}
