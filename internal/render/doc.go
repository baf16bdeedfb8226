// Package render turns a QwenService, with the results of its RateLimitPolicy and
// DegradationPlan, into the Kubernetes objects that serve it: the engine and fallback
// Deployments and Services, the gateway (Deployment, Service, ConfigMap, ServiceAccount,
// Role, RoleBinding, PodDisruptionBudget), the model cache PVC, and the Ingress, HTTPRoute
// and Envoy Gateway BackendTrafficPolicy that expose it.
//
// Every function here is pure: no client calls and no clock. The same Inputs give the same
// objects byte for byte, which the golden files in testdata/ pin down
// (`go test ./internal/render -update` rewrites them).
package render
