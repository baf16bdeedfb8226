package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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
	"k8s.io/apimachinery/pkg/types"
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

// childKinds are the kinds a QwenService can own, the optional ones while they are served.
func (r *QwenServiceReconciler) childKinds() []schema.GroupVersionKind {
	kinds := []schema.GroupVersionKind{
		appsv1.SchemeGroupVersion.WithKind("Deployment"), corev1.SchemeGroupVersion.WithKind("Service"),
		corev1.SchemeGroupVersion.WithKind("ConfigMap"), corev1.SchemeGroupVersion.WithKind("ServiceAccount"),
		rbacv1.SchemeGroupVersion.WithKind("Role"), rbacv1.SchemeGroupVersion.WithKind("RoleBinding"),
		policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"), corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"),
		networkingv1.SchemeGroupVersion.WithKind("Ingress"), networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"),
	}
	if r.httpRoute.Served() {
		kinds = append(kinds, httpRouteGVK)
	}
	if r.btp.Served() {
		kinds = append(kinds, backendTrafficPolicyGVK)
	}
	return kinds
}

// deploymentGVK is the one child kind the cache holds whole: the status reads its state.
// The cache holds every other child kind as metadata only (SetupWithManager), so reads of
// them must ask for metadata, or a second, full informer would start.
var deploymentGVK = appsv1.SchemeGroupVersion.WithKind("Deployment")

// cachedObject is an empty object of kind gvk as the cache holds it: a Deployment, or the
// metadata of any other kind.
func cachedObject(gvk schema.GroupVersionKind) client.Object {
	if gvk == deploymentGVK {
		return &appsv1.Deployment{}
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	return m
}

// cachedList is an empty list of kind gvk as the cache holds it (see cachedObject).
func cachedList(gvk schema.GroupVersionKind) client.ObjectList {
	if gvk == deploymentGVK {
		return &appsv1.DeploymentList{}
	}
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	return l
}

// applied is what the last apply of a child returned: the object's resourceVersion and a
// hash of the configuration that was applied.
type applied struct {
	resourceVersion string
	hash            uint64
}

// apply server-side applies every desired object with the operator's field manager, taking
// ownership of any field someone else changed in an object the QwenService controls, then
// deletes the children no longer desired: the prune is decided as a plan (prunePlan, pure)
// before it is executed. An object of the same name that the QwenService does not control is
// left alone and reported as a *conflictError. An object the API server refuses does not stop
// the others; pruning waits until all apply.
//
// A child whose cached resourceVersion is the one its last apply returned, with the same
// configuration to apply, is not applied again: nobody wrote it since, so the apply would
// change nothing. It returns the objects the API server answered the applies with.
func (r *QwenServiceReconciler) apply(ctx context.Context, qs *v1alpha1.QwenService, desired []client.Object) (map[childKey]*unstructured.Unstructured, error) {
	rendered := map[childKey]bool{}
	fresh := map[childKey]*unstructured.Unstructured{}
	last, next := r.lastApplied(qs), map[childKey]applied{}
	defer func() { r.rememberApplied(qs, next) }()
	var errs []error
	conflict := &conflictError{}
	for _, obj := range desired {
		u, err := render.ToUnstructured(obj)
		if err != nil {
			return fresh, err
		}
		key := keyOf(u.GetKind(), u)
		rendered[key] = true
		live, err := r.live(ctx, u.GroupVersionKind(), client.ObjectKeyFromObject(u))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("reading %s %s: %w", u.GetKind(), u.GetName(), err))
			continue
		case live != nil && !metav1.IsControlledBy(live, qs):
			conflict.objects = append(conflict.objects, u.GetKind()+" "+u.GetName())
			continue
		}
		hash, err := hashOf(u)
		if err != nil {
			return fresh, err
		}
		if prev, ok := last[key]; ok && live != nil && prev == (applied{live.GetResourceVersion(), hash}) {
			next[key] = prev
			continue
		}
		if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(render.ManagedBy), client.ForceOwnership); err != nil {
			errs = append(errs, fmt.Errorf("applying %s %s: %w", key.kind, key.name, err))
			continue
		}
		next[key] = applied{u.GetResourceVersion(), hash} // u now holds the API server's answer
		fresh[key] = u
	}
	if len(errs) > 0 {
		return fresh, errors.Join(errs...)
	}
	if len(conflict.objects) > 0 {
		return fresh, conflict
	}
	children, err := r.children(ctx, qs)
	if err != nil {
		return fresh, err
	}
	return fresh, r.prune(ctx, prunePlan(qs, rendered, children))
}

// hashOf hashes the configuration of u (its JSON, whose map keys are sorted).
func hashOf(u *unstructured.Unstructured) (uint64, error) {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return 0, err
	}
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64(), nil
}

// lastApplied is what the last reconcile of qs applied, by child.
func (r *QwenServiceReconciler) lastApplied(qs *v1alpha1.QwenService) map[childKey]applied {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[client.ObjectKeyFromObject(qs)]
}

// rememberApplied records what this reconcile of qs applied or found unchanged; the children
// it did not reach are applied again next time.
func (r *QwenServiceReconciler) rememberApplied(qs *v1alpha1.QwenService, children map[childKey]applied) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.applied == nil {
		r.applied = map[types.NamespacedName]map[childKey]applied{}
	}
	r.applied[client.ObjectKeyFromObject(qs)] = children
}

// forgetApplied drops the record of a service that is gone or going.
func (r *QwenServiceReconciler) forgetApplied(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.applied, key)
}

// conflictError names the objects the render wants that exist and are not controlled by the
// QwenService (a hand-made object, another controller's): applying would have taken them over.
type conflictError struct{ objects []string }

func (e *conflictError) Error() string {
	return fmt.Sprintf("%s already exist and are not owned by this QwenService; they were left alone: delete or rename them, and the service renders its own",
		strings.Join(e.objects, ", "))
}

// live is the object of kind gvk named key as the cache holds it (see cachedObject), or nil
// when it does not exist. The cache holds only the operator's (labelled) objects, so an
// object it lacks is looked up on the API server, metadata only, to find a foreign one.
func (r *QwenServiceReconciler) live(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey) (client.Object, error) {
	obj := cachedObject(gvk)
	err := r.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(gvk)
		obj, err = m, r.APIReader.Get(ctx, key, m)
	}
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return obj, nil
}

// childKey identifies a child by kind and name.
type childKey struct{ kind, name string }

func keyOf(kind string, o client.Object) childKey { return childKey{kind, o.GetName()} }

// child is an object that carries the labels of a child of a QwenService.
type child struct {
	kind string
	obj  client.Object
}

// children lists the objects labelled as children of qs, of every kind it can own, from the
// cache (metadata only but for Deployments).
func (r *QwenServiceReconciler) children(ctx context.Context, qs *v1alpha1.QwenService) ([]child, error) {
	var out []child
	for _, gvk := range r.childKinds() {
		list := cachedList(gvk)
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
		for _, item := range items {
			out = append(out, child{kind: gvk.Kind, obj: item.(client.Object)})
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
