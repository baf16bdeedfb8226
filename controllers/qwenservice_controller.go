package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

// QwenServiceReconciler keeps the children of every QwenService as render.Render describes
// them and reports their state in its status.
type QwenServiceReconciler struct {
	client.Client
	// APIReader reads what the cache does not hold (objects without the operator's labels).
	// Default: the manager's API reader.
	APIReader client.Reader
	// Recorder records Events on the QwenService. Default: the manager's "qwen-operator".
	Recorder events.EventRecorder
	// Defaults are the images a spec leaves empty.
	Defaults render.Defaults
	// Clock stamps condition transitions. Default: the real clock.
	Clock clock.PassiveClock
	// MaxConcurrentReconciles is the number of services reconciled at once. Default 4.
	MaxConcurrentReconciles int
	// ConflictRecheck is how often a service whose children conflict with objects it does
	// not own looks again (the cache does not watch objects without the operator's labels).
	// Default 30s.
	ConflictRecheck time.Duration

	httpRoute, btp *servedProbe

	mu sync.Mutex
	// applied is what the last reconcile of each service applied, by child (see apply).
	applied map[types.NamespacedName]map[childKey]applied
}

// +kubebuilder:rbac:groups=serving.qwenops.io,resources=qwenservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=serving.qwenops.io,resources=qwenservices/status,verbs=get;patch
// +kubebuilder:rbac:groups=serving.qwenops.io,resources=ratelimitpolicies;degradationplans,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=services;configmaps;serviceaccounts;persistentvolumeclaims,verbs=get;list;watch;create;patch;delete
// Secrets: list and watch, by a metadata-only informer, to report a missing one and re-render
// when it appears (docs/qwenservice.md, "What the operator may do").
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses;networkpolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=gateway.envoyproxy.io,resources=backendtrafficpolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// EndpointSlices: whether the fallback has a ready endpoint (read only).
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch

// Reconcile renders qs with its policy and plan, applies the result, deletes children whose
// section was removed, and writes status once. A spec that cannot be rendered sets
// Ready=False with a reason and returns nil: a change to the spec, the policy, the plan or a
// referenced Secret brings it back, not a retry loop.
func (r *QwenServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	qs := &v1alpha1.QwenService{}
	if err := r.Get(ctx, req.NamespacedName, qs); err != nil {
		if apierrors.IsNotFound(err) {
			r.forgetApplied(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !qs.DeletionTimestamp.IsZero() {
		r.forgetApplied(req.NamespacedName)
		return ctrl.Result{}, nil // owner references let the garbage collector remove the children
	}
	in, err := r.inputs(ctx, qs)
	if err != nil {
		return ctrl.Result{}, err
	}
	desired, renderErr := render.Render(in)
	var applyErr error
	var fresh map[childKey]*unstructured.Unstructured
	if renderErr == nil {
		fresh, applyErr = r.apply(ctx, qs, desired)
	}
	obs, err := r.observe(ctx, qs, fresh)
	if err != nil {
		return ctrl.Result{}, err
	}
	status := computeStatus(qs, in, obs, errors.Join(renderErr, applyErr), r.Clock.Now())
	if err := r.writeStatus(ctx, qs, status); err != nil {
		return retryIfStale(err)
	}
	var invalid *render.InvalidError
	if errors.As(renderErr, &invalid) {
		return ctrl.Result{}, nil
	}
	var conflict *conflictError
	if errors.As(applyErr, &conflict) {
		// Not an error to retry at once: the foreign object goes when someone removes it.
		return ctrl.Result{RequeueAfter: r.ConflictRecheck}, nil
	}
	return ctrl.Result{}, errors.Join(renderErr, applyErr)
}

// observe reads the child Deployments: as this reconcile's applies returned them (the cache
// may not hold them yet), else from the cache; absent ones stay nil.
func (r *QwenServiceReconciler) observe(ctx context.Context, qs *v1alpha1.QwenService, fresh map[childKey]*unstructured.Unstructured) (observed, error) {
	var obs observed
	for name, dst := range map[string]**appsv1.Deployment{
		render.EngineName(qs): &obs.engine, render.FallbackName(qs): &obs.fallback, render.GatewayName(qs): &obs.gateway,
	} {
		d := &appsv1.Deployment{}
		var err error
		if u, ok := fresh[childKey{deploymentGVK.Kind, name}]; ok {
			err = runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d)
		} else {
			err = r.Get(ctx, types.NamespacedName{Namespace: qs.Namespace, Name: name}, d)
		}
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return obs, fmt.Errorf("reading Deployment %s: %w", name, err)
		case metav1.IsControlledBy(d, qs):
			*dst = d
		}
	}
	return obs, nil
}

// writeStatus records the Events of the transition and patches the status, unless nothing
// changed.
func (r *QwenServiceReconciler) writeStatus(ctx context.Context, qs *v1alpha1.QwenService, status v1alpha1.QwenServiceStatus) error {
	if equality.Semantic.DeepEqual(qs.Status, status) {
		return nil
	}
	events := statusEvents(qs.Status, status)
	if err := patchStatus(ctx, r.Client, qs, func(qs *v1alpha1.QwenService) { qs.Status = status }); err != nil {
		return err
	}
	for _, ev := range events {
		r.Recorder.Eventf(qs, nil, ev.eventType, ev.reason, "Reconcile", "%s", ev.note)
	}
	return nil
}

// SetupWithManager registers the reconciler: it owns every child kind, and watches the
// policies, plans and Secrets that change what it renders. It watches the Deployments whole
// (the status reads their state) and every other child kind as metadata only: a child's
// existence, owner and resourceVersion are all it reads of them.
func (r *QwenServiceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = 4
	}
	if r.ConflictRecheck == 0 {
		r.ConflictRecheck = 30 * time.Second
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder("qwen-operator")
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	r.httpRoute = newServedProbe(mgr.GetRESTMapper(), httpRouteGVK, r.Clock, time.Minute)
	r.btp = newServedProbe(mgr.GetRESTMapper(), backendTrafficPolicyGVK, r.Clock, time.Minute)
	b := ctrl.NewControllerManagedBy(mgr).
		Named("qwenservice").
		For(&v1alpha1.QwenService{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}, builder.OnlyMetadata).
		Owns(&corev1.ConfigMap{}, builder.OnlyMetadata).
		Owns(&corev1.ServiceAccount{}, builder.OnlyMetadata).
		Owns(&rbacv1.Role{}, builder.OnlyMetadata).
		Owns(&rbacv1.RoleBinding{}, builder.OnlyMetadata).
		Owns(&policyv1.PodDisruptionBudget{}, builder.OnlyMetadata).
		Owns(&corev1.PersistentVolumeClaim{}, builder.OnlyMetadata).
		Owns(&networkingv1.Ingress{}, builder.OnlyMetadata).
		Owns(&networkingv1.NetworkPolicy{}, builder.OnlyMetadata).
		Watches(&v1alpha1.RateLimitPolicy{}, handler.EnqueueRequestsFromMapFunc(targetOf), builder.WithPredicates(policyStatusChanged())).
		Watches(&v1alpha1.DegradationPlan{}, handler.EnqueueRequestsFromMapFunc(targetOf)).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.servicesUsingSecret), builder.OnlyMetadata).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(fallbackSliceOwner)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles})
	// Optional kinds: watching a kind the API server does not serve would stop the manager.
	// Served later, they are still applied and pruned, only not watched for drift.
	if r.httpRoute.Served() {
		b = b.Owns(&gatewayv1.HTTPRoute{}, builder.OnlyMetadata)
	}
	if r.btp.Served() {
		btp := &unstructured.Unstructured{}
		btp.SetGroupVersionKind(backendTrafficPolicyGVK)
		b = b.Owns(btp, builder.OnlyMetadata)
	}
	return b.Complete(r)
}

// fallbackSliceOwner maps an EndpointSlice of a fallback Service to its QwenService (the
// slices carry the Service's labels).
func fallbackSliceOwner(_ context.Context, o client.Object) []reconcile.Request {
	l := o.GetLabels()
	if l[render.LabelComponent] != render.ComponentFallback || l[render.LabelService] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: l[render.LabelService]}}}
}

// targetOf maps a RateLimitPolicy or DegradationPlan to the QwenService it targets.
func targetOf(_ context.Context, o client.Object) []reconcile.Request {
	var name string
	switch p := o.(type) {
	case *v1alpha1.RateLimitPolicy:
		name = p.Spec.TargetRef.Name
	case *v1alpha1.DegradationPlan:
		name = p.Spec.TargetRef.Name
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// policyStatusChanged passes a RateLimitPolicy's creation and deletion, and an update only
// when its status or its target changed. The status is all the QwenService renders from, so
// a spec edit is rendered once the RateLimitPolicy controller has judged it and written the
// result; a changed target re-renders the old target too (the map runs on both objects).
func policyStatusChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		old, okOld := e.ObjectOld.(*v1alpha1.RateLimitPolicy)
		now, okNew := e.ObjectNew.(*v1alpha1.RateLimitPolicy)
		if !okOld || !okNew {
			return true
		}
		return old.Spec.TargetRef != now.Spec.TargetRef || !equality.Semantic.DeepEqual(old.Status, now.Status)
	}}
}

// servicesUsingSecret maps a Secret to the QwenServices whose pods reference it.
func (r *QwenServiceReconciler) servicesUsingSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.QwenServiceList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{IndexSecretRefs: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing QwenServices that use Secret", "secret", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, qs := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&qs)})
	}
	return reqs
}
