package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/telemetry"
)

// RateLimitPolicyReconciler judges each RateLimitPolicy and, when it accepts it, resolves it
// into status.effective — its settings and every tier's limits, the active schedule over the
// base limits, each override over those, all scaled by telemetry — where the QwenService
// controller picks it up. It requeues exactly at the next schedule
// transition, and at TelemetryInterval while adaptive rules exist.
type RateLimitPolicyReconciler struct {
	client.Client
	// Recorder records Events on the policy.
	Recorder events.EventRecorder
	// Clock is the time schedules are evaluated at. Default: the real clock.
	Clock clock.PassiveClock
	// PrometheusURL is where adaptive rules read telemetry when spec.prometheus names no url.
	PrometheusURL string
	// AllowedPrometheusURLs are the Prometheus URLs policies may name (scheme and host must
	// match an entry); empty allows any. PrometheusURL is always allowed.
	AllowedPrometheusURLs []string
	// Queriers returns the telemetry client of a URL and credentials. Default: one
	// telemetry.Client per URL and credentials, for the URLs AllowedPrometheusURLs allows.
	Queriers QuerierFactory
	// APIReader reads the Secrets and ConfigMaps spec.prometheus names, uncached. Default:
	// the manager's API reader.
	APIReader client.Reader
	// TelemetryInterval is how often adaptive rules are re-read. Default 15s.
	TelemetryInterval time.Duration
	// QueryBudget bounds the total time of one policy's telemetry read. Default
	// DefaultQueryBudget.
	QueryBudget time.Duration
	// MaxConcurrentReconciles is the number of policies reconciled at once. Default
	// DefaultTelemetryReconciles.
	MaxConcurrentReconciles int
}

// +kubebuilder:rbac:groups=serving.qwenops.io,resources=ratelimitpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=serving.qwenops.io,resources=ratelimitpolicies/status,verbs=get;patch
// Secrets and ConfigMaps: get, uncached and only the keys spec.prometheus names (its
// credentials and CA), at each telemetry read.
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get

// Reconcile evaluates one policy at the clock's instant and writes its status when it changed.
// Invalid input (unknown timezone, missing target, conflict) is reported in conditions and
// returns nil: a change to the policy or its target brings it back, not a retry loop.
func (r *RateLimitPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1alpha1.RateLimitPolicy{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		if apierrors.IsNotFound(err) {
			setPolicyMetrics(req.String(), nil, "")
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	in := policyInputs{policy: p, now: r.Clock.Now()}
	var err error
	if in.targetExists, in.olderPolicy, err = standing(ctx, r.Client, p, p.Spec.TargetRef.Name, &v1alpha1.RateLimitPolicyList{}); err != nil {
		return ctrl.Result{}, err
	}
	if len(p.Spec.Adaptive) > 0 && in.targetExists && in.olderPolicy == "" {
		in.adaptive = r.readAdaptive(ctx, p)
	}

	status, requeue := policyStatus(in)
	if err := r.writeStatus(ctx, p, status); err != nil {
		return retryIfStale(err)
	}
	setPolicyMetrics(req.String(), status.Effective, status.ActiveSchedule)
	if len(p.Spec.Adaptive) > 0 && (requeue == 0 || requeue > r.TelemetryInterval) {
		requeue = r.TelemetryInterval
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// readAdaptive reads the adaptive rules' triggers from Prometheus.
func (r *RateLimitPolicyReconciler) readAdaptive(ctx context.Context, p *v1alpha1.RateLimitPolicy) readings {
	triggers := make([]v1alpha1.Trigger, len(p.Spec.Adaptive))
	for i, a := range p.Spec.Adaptive {
		triggers[i] = a.Trigger
	}
	return readTelemetry(ctx, r.Client, r.APIReader, r.Queriers, p.Namespace, p.Spec.TargetRef.Name, p.Spec.Prometheus, r.PrometheusURL, triggers, r.QueryBudget)
}

// writeStatus patches the status when it changed, with an Event when the schedule switched.
func (r *RateLimitPolicyReconciler) writeStatus(ctx context.Context, p *v1alpha1.RateLimitPolicy, status v1alpha1.RateLimitPolicyStatus) error {
	if equality.Semantic.DeepEqual(p.Status, status) {
		return nil
	}
	changed := status.Effective != nil && (p.Status.ActiveSchedule != status.ActiveSchedule || p.Status.AdaptiveScale != status.AdaptiveScale)
	if err := patchStatus(ctx, r.Client, p, func(p *v1alpha1.RateLimitPolicy) { p.Status = status }); err != nil {
		return err
	}
	if changed {
		r.Recorder.Eventf(p, nil, "Normal", "LimitsChanged", "Reconcile", "schedule %q, adaptive scale %s: %d requests/min",
			orBase(status.ActiveSchedule), status.AdaptiveScale, ptr.Deref(status.Effective.Limits.RequestsPerMinute, 0))
	}
	return nil
}

func orBase(schedule string) string {
	if schedule == "" {
		return "base"
	}
	return schedule
}

// SetupWithManager registers the reconciler; it also watches QwenServices (a target may
// appear or go) and the other policies on the same target (a conflict may end).
func (r *RateLimitPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.Queriers == nil {
		r.Queriers = cachedQueriers(telemetry.DefaultTimeout, allowedURLs(r.AllowedPrometheusURLs, r.PrometheusURL))
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.TelemetryInterval == 0 {
		r.TelemetryInterval = 15 * time.Second
	}
	if r.QueryBudget == 0 {
		r.QueryBudget = DefaultQueryBudget
	}
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = DefaultTelemetryReconciles
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("ratelimitpolicy").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		For(&v1alpha1.RateLimitPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.RateLimitPolicy{}, targeting(r.Client, newPolicyList), builder.WithPredicates(createOrDelete())).
		Watches(&v1alpha1.QwenService{}, targeting(r.Client, newPolicyList), builder.WithPredicates(createOrDelete())).
		Complete(r)
}

func newPolicyList() client.ObjectList { return &v1alpha1.RateLimitPolicyList{} }
