package controllers

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/qwenops/qwen-operator/internal/render"
)

// CacheOptions restrict the manager's cache of the QwenService's child kinds to the objects
// the operator manages, so its memory grows with the number of QwenServices and not with
// every ConfigMap, Service or Deployment in the cluster. Pass it as ctrl.Options.Cache.
// HTTPRoute is left out: a ByObject entry makes the manager fail to start on a cluster
// without the Gateway API CRDs, and HTTPRoutes are few. No object is cached with its
// managedFields, which no reconciler reads and which server-side apply makes the largest
// part of a small object's metadata; Deployments are cached without their pod template (see
// slimDeployment). The QwenService controller caches its other child kinds as metadata only.
func CacheOptions() cache.Options {
	managed := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})
	byObject := map[client.Object]cache.ByObject{}
	byObject[&appsv1.Deployment{}] = cache.ByObject{Label: managed, Transform: slimDeployment}
	for _, o := range []client.Object{
		&corev1.Service{}, &corev1.ConfigMap{}, &corev1.ServiceAccount{},
		&rbacv1.Role{}, &rbacv1.RoleBinding{}, &policyv1.PodDisruptionBudget{},
		&corev1.PersistentVolumeClaim{}, &networkingv1.Ingress{}, &networkingv1.NetworkPolicy{},
		// The EndpointSlice controller copies a Service's labels to its slices.
		&discoveryv1.EndpointSlice{},
	} {
		byObject[o] = cache.ByObject{Label: managed}
	}
	return cache.Options{ByObject: byObject, DefaultTransform: cache.TransformStripManagedFields()}
}

// slimDeployment drops what no reconciler reads from a Deployment before the cache stores it:
// its managedFields and its pod template, most of its size (the engine's arguments, probes,
// volumes). The status is computed from the rest (replicas, status, owner).
func slimDeployment(obj any) (any, error) {
	if d, ok := obj.(*appsv1.Deployment); ok {
		d.ManagedFields = nil
		d.Spec.Template = corev1.PodTemplateSpec{}
	}
	return obj, nil
}
