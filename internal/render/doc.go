// Package render turns a QwenService, with the results of its RateLimitPolicy (its status,
// read through Enforced) and DegradationPlan, into the Kubernetes objects that serve it: the engine and fallback
// Deployments and Services, the gateway (Deployment, Service, ConfigMap, ServiceAccount,
// Role, RoleBinding, PodDisruptionBudget), the model cache PVC, and the Ingress, HTTPRoute
// and Envoy Gateway BackendTrafficPolicy that expose it.
//
// Every function here is pure: no client calls and no clock. The same Inputs give the same
// objects byte for byte, which the golden cases in testdata/ pin down: NAME.in.yaml holds a
// case's inputs and NAME.golden.yaml its objects (`go test ./internal/render -run TestGolden
// -update` rewrites the outputs; a new case is a new .in.yaml file).
package render
