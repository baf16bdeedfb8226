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
	ctrl "sigs.k8s.io/controller-runtime"
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
		&corev1.PersistentVolumeClaimList{}, &networkingv1.IngressList{}, &networkingv1.NetworkPolicyList{},
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
// ownership of any field someone else changed in an object the QwenService controls, then
// deletes the children no longer desired: the prune is decided as a plan (prunePlan, pure)
// before it is executed. An object of the same name that the QwenService does not control is
// left alone and reported as a *conflictError. An object the API server refuses does not stop
// the others; pruning waits until all apply.
func (r *QwenServiceReconciler) apply(ctx context.Context, qs *v1alpha1.QwenService, desired []client.Object) error {
	rendered := map[childKey]bool{}
	var errs []error
	conflict := &conflictError{}
	for _, obj := range desired {
		u, err := render.ToUnstructured(obj)
		if err != nil {
			return err
		}
		rendered[keyOf(u.GetKind(), u)] = true
		foreign, err := r.foreign(ctx, qs, obj)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("reading %s %s: %w", u.GetKind(), u.GetName(), err))
			continue
		case foreign:
			conflict.objects = append(conflict.objects, u.GetKind()+" "+u.GetName())
			continue
		}
		if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(render.ManagedBy), client.ForceOwnership); err != nil {
			errs = append(errs, fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(conflict.objects) > 0 {
		return conflict
	}
	children, err := r.children(ctx, qs)
	if err != nil {
		return err
	}
	return r.prune(ctx, prunePlan(qs, rendered, children))
}

// conflictError names the objects the render wants that exist and are not controlled by the
// QwenService (a hand-made object, another controller's): applying would have taken them over.
type conflictError struct{ objects []string }

func (e *conflictError) Error() string {
	return fmt.Sprintf("%s already exist and are not owned by this QwenService; they were left alone: delete or rename them, and the service renders its own",
		strings.Join(e.objects, ", "))
}

// foreign reports whether an object named like obj exists that qs does not control. The
// cache holds only the operator's (labelled) objects, so an object it lacks is looked up on
// the API server, metadata only.
func (r *QwenServiceReconciler) foreign(ctx context.Context, qs *v1alpha1.QwenService, obj client.Object) (bool, error) {
	key := client.ObjectKeyFromObject(obj)
	live := obj.DeepCopyObject().(client.Object)
	err := r.Get(ctx, key, live)
	if apierrors.IsNotFound(err) {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
		live, err = m, r.APIReader.Get(ctx, key, m)
	}
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return !metav1.IsControlledBy(live, qs), nil
}

// childKey identifies a child by kind and name.
type childKey struct{ kind, name string }

func keyOf(kind string, o client.Object) childKey { return childKey{kind, o.GetName()} }

// child is an object that carries the labels of a child of a QwenService.
type child struct {
	kind string
	obj  client.Object
}

// children lists the objects labelled as children of qs, of every kind it can own.
func (r *QwenServiceReconciler) children(ctx context.Context, qs *v1alpha1.QwenService) ([]child, error) {
	var out []child
	for _, list := range r.childLists() {
		if err := r.List(ctx, list, client.InNamespace(qs.Namespace), client.MatchingLabels(render.OwnedSelector(qs))); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return nil, fmt.Errorf("listing children: %w", err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, err
		}
		listGVK, err := r.GroupVersionKindFor(list)
		if err != nil {
			return nil, err
		}
		kind := strings.TrimSuffix(listGVK.Kind, "List")
		for _, item := range items {
			out = append(out, child{kind: kind, obj: item.(client.Object)})
		}
	}
	return out, nil
}

// deletion is one step of a prune plan: the child to delete and why.
type deletion struct {
	child
	why string
}

// prunedBecause says why the render no longer produces a child, by its component label.
var prunedBecause = map[string]string{
	render.ComponentFallback:      "spec.fallback is not set",
	render.ComponentCache:         "spec.modelCache asks for no PVC of its own",
	render.ComponentExposure:      "spec.exposure or the rate limit no longer renders it",
	render.ComponentNetworkPolicy: "spec.networkPolicy.enabled is false",
}

// prunePlan decides which children to delete: those qs controls (by UID, so a namesake's or
// a hand-made object with the same labels is left alone) that the render no longer produces.
func prunePlan(qs *v1alpha1.QwenService, rendered map[childKey]bool, children []child) []deletion {
	var plan []deletion
	for _, c := range children {
		owner := metav1.GetControllerOf(c.obj)
		if owner == nil || owner.UID != qs.UID || rendered[keyOf(c.kind, c.obj)] {
			continue
		}
		why, ok := prunedBecause[c.obj.GetLabels()[render.LabelComponent]]
		if !ok {
			why = "the render no longer produces it"
		}
		plan = append(plan, deletion{child: c, why: why})
	}
	return plan
}

// prune executes a prune plan; each delete is guarded by the object's UID, so an object
// re-created since it was listed is kept.
func (r *QwenServiceReconciler) prune(ctx context.Context, plan []deletion) error {
	log := ctrl.LoggerFrom(ctx)
	for _, d := range plan {
		log.Info("deleting a child", "kind", d.kind, "name", d.obj.GetName(), "why", d.why)
		if err := r.Delete(ctx, d.obj, client.Preconditions{UID: ptr.To(d.obj.GetUID())}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s %s: %w", d.kind, d.obj.GetName(), err)
		}
	}
	return nil
}
