package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

// The optional kinds, applied and pruned only while the API server serves them.
var (
	httpRouteGVK            = gatewayv1.SchemeGroupVersion.WithKind("HTTPRoute")
	backendTrafficPolicyGVK = schema.GroupVersionKind{
		Group: render.BackendTrafficPolicyGroup, Version: render.BackendTrafficPolicyVersion, Kind: render.BackendTrafficPolicyKind,
	}
)

// childLists are the kinds a QwenService can own, as lists for pruning.
func (r *QwenServiceReconciler) childLists() []client.ObjectList {
	lists := []client.ObjectList{
		&appsv1.DeploymentList{}, &corev1.ServiceList{}, &corev1.ConfigMapList{}, &corev1.ServiceAccountList{},
		&rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &policyv1.PodDisruptionBudgetList{},
		&corev1.PersistentVolumeClaimList{}, &networkingv1.IngressList{},
	}
	if r.httpRoute.Served() {
		lists = append(lists, &gatewayv1.HTTPRouteList{})
	}
	if r.btp.Served() {
		btps := &unstructured.UnstructuredList{}
		btps.SetGroupVersionKind(backendTrafficPolicyGVK.GroupVersion().WithKind(backendTrafficPolicyGVK.Kind + "List"))
		lists = append(lists, btps)
	}
	return lists
}

// apply server-side applies every desired object with the operator's field manager, taking
// ownership of any field someone else changed, then deletes the children no longer desired.
// An object the API server refuses does not stop the others; pruning waits until all apply.
func (r *QwenServiceReconciler) apply(ctx context.Context, qs *v1alpha1.QwenService, desired []client.Object) error {
	keep := map[childKey]bool{}
	var errs []error
	for _, obj := range desired {
		u, err := render.ToUnstructured(obj)
		if err != nil {
			return err
		}
		keep[keyOf(u)] = true
		if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(render.ManagedBy), client.ForceOwnership); err != nil {
			errs = append(errs, fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return r.prune(ctx, qs, keep)
}

// childKey identifies a child by kind and name.
type childKey struct{ kind, name string }

func keyOf(o client.Object) childKey {
	return childKey{o.GetObjectKind().GroupVersionKind().Kind, o.GetName()}
}

// prune deletes the children of qs (by label and controller reference) that are not in keep:
// a removed fallback, cache or exposure, or an exposure whose kind switched.
func (r *QwenServiceReconciler) prune(ctx context.Context, qs *v1alpha1.QwenService, keep map[childKey]bool) error {
	for _, list := range r.childLists() {
		if err := r.List(ctx, list, client.InNamespace(qs.Namespace), client.MatchingLabels(render.OwnedSelector(qs))); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return fmt.Errorf("listing children: %w", err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return err
		}
		listGVK, err := r.GroupVersionKindFor(list)
		if err != nil {
			return err
		}
		kind := strings.TrimSuffix(listGVK.Kind, "List")
		for _, item := range items {
			obj := item.(client.Object)
			owner := metav1.GetControllerOf(obj)
			if owner == nil || owner.UID != qs.UID || keep[childKey{kind, obj.GetName()}] {
				continue
			}
			if err := r.Delete(ctx, obj, client.Preconditions{UID: ptr.To(obj.GetUID())}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("deleting %s %s: %w", kind, obj.GetName(), err)
			}
		}
	}
	return nil
}
