package controllers

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/degrade"
	"github.com/qwenops/qwen-operator/internal/telemetry"
)

// DegradationPlanReconciler polls Prometheus at each plan's interval, evaluates its level
// with internal/degrade and writes it to the plan's status, where the QwenService controller
// picks it up.
type DegradationPlanReconciler struct {
	client.Client
	// Recorder records Events on the plan.
	Recorder events.EventRecorder
	// Clock is the time levels are evaluated at. Default: the real clock.
	Clock clock.PassiveClock
	// PrometheusURL is used when a plan sets no spec.prometheus.url.
	PrometheusURL string
	// AllowedPrometheusURLs are the Prometheus URLs plans may name (scheme and host must
	// match an entry); empty allows any. PrometheusURL is always allowed.
	AllowedPrometheusURLs []string
	// Queriers returns the telemetry client of a URL and credentials. Default: one
	// telemetry.Client per URL and credentials, for the URLs AllowedPrometheusURLs allows.
	Queriers QuerierFactory
	// APIReader reads the Secrets and ConfigMaps spec.prometheus names, uncached. Default:
	// the manager's API reader.
	APIReader client.Reader
	// QueryBudget bounds the total time of one plan's telemetry read. Default
	// DefaultQueryBudget.
	QueryBudget time.Duration
	// MaxConcurrentReconciles is the number of plans reconciled at once. Default
	// DefaultTelemetryReconciles.
	MaxConcurrentReconciles int

	mu     sync.Mutex
	states map[types.NamespacedName]planMemory
}

// planMemory is the evaluator's state of one plan object (a re-created plan has a new UID).
type planMemory struct {
	uid   types.UID
	state degrade.State
}

// +kubebuilder:rbac:groups=serving.qwenops.io,resources=degradationplans,verbs=get;list;watch
// +kubebuilder:rbac:groups=serving.qwenops.io,resources=degradationplans/status,verbs=get;patch
// Secrets and ConfigMaps: get, uncached and only the keys spec.prometheus names (its
// credentials and CA), at each telemetry read.
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get

// Reconcile reads the plan's signals, evaluates the level and writes status when it changed,
// then comes back after spec.prometheus.interval. Invalid input is reported in conditions
// and never escalates or de-escalates.
func (r *DegradationPlanReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1alpha1.DegradationPlan{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		if apierrors.IsNotFound(err) {
			degradationLevel.DeleteLabelValues(req.String())
			r.mu.Lock()
			delete(r.states, req.NamespacedName)
			r.mu.Unlock()
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	in := planInputs{plan: p, now: r.Clock.Now()}
	in.compiled, in.compileErr = degrade.NewPlan(p.Spec)
	var err error
	if in.targetExists, in.olderPlan, err = standing(ctx, r.Client, p, p.Spec.TargetRef.Name, &v1alpha1.DegradationPlanList{}); err != nil {
		return ctrl.Result{}, err
	}
	if in.compiled != nil {
		in.state = r.state(p, in.compiled)
		if in.targetExists && in.olderPlan == "" {
			in.read = r.read(ctx, p, in.compiled)
		}
	}

	status, next := planStatus(in)
	if err := r.writeStatus(ctx, p, status); err != nil {
		return retryIfStale(err)
	}
	r.remember(p, next)
	degradationLevel.WithLabelValues(req.String()).Set(float64(status.Level))
	return ctrl.Result{RequeueAfter: p.Spec.Prometheus.Interval.Duration}, nil
}

// read queries the plan's triggers.
func (r *DegradationPlanReconciler) read(ctx context.Context, p *v1alpha1.DegradationPlan, plan *degrade.Plan) readings {
	return readTelemetry(ctx, r.Client, r.APIReader, r.Queriers, p.Namespace, p.Spec.TargetRef.Name,
		&p.Spec.Prometheus.PrometheusConnection, r.PrometheusURL, plan.Inputs(), r.QueryBudget)
}

// state is the evaluator's memory of p, restored from status after a restart.
func (r *DegradationPlanReconciler) state(p *v1alpha1.DegradationPlan, plan *degrade.Plan) degrade.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.states[client.ObjectKeyFromObject(p)]; ok && m.uid == p.UID {
		return m.state
	}
	if p.Status.Since == nil {
		return degrade.State{}
	}
	return plan.Restore(p.Status.Level, p.Status.Since.Time)
}

func (r *DegradationPlanReconciler) remember(p *v1alpha1.DegradationPlan, s degrade.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[client.ObjectKeyFromObject(p)] = planMemory{uid: p.UID, state: s}
}

// writeStatus patches the status when it changed, with an Event on each level transition.
func (r *DegradationPlanReconciler) writeStatus(ctx context.Context, p *v1alpha1.DegradationPlan, status v1alpha1.DegradationPlanStatus) error {
	if equality.Semantic.DeepEqual(p.Status, status) {
		return nil
	}
	from := p.Status.Level
	if err := patchStatus(ctx, r.Client, p, func(p *v1alpha1.DegradationPlan) { p.Status = status }); err != nil {
		return err
	}
	if status.Level != from {
		eventType, reason := "Warning", "Degraded"
		if status.Level < from {
			eventType, reason = "Normal", "Recovered"
		}
		r.Recorder.Eventf(p, nil, eventType, reason, "Reconcile", "level %d → %d: %s", from, status.Level, firstOr(status.Reasons, "all triggers cleared"))
	}
	return nil
}

func firstOr(ss []string, def string) string {
	if len(ss) == 0 {
		return def
	}
	return ss[0]
}

// SetupWithManager registers the reconciler; it also watches QwenServices (a target may
// appear or go) and the other plans on the same target (a conflict may end).
func (r *DegradationPlanReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.Queriers == nil {
		r.Queriers = cachedQueriers(telemetry.DefaultTimeout, allowedURLs(r.AllowedPrometheusURLs, r.PrometheusURL))
	}
	if r.QueryBudget == 0 {
		r.QueryBudget = DefaultQueryBudget
	}
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = DefaultTelemetryReconciles
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	r.states = map[types.NamespacedName]planMemory{}
	return ctrl.NewControllerManagedBy(mgr).
		Named("degradationplan").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		For(&v1alpha1.DegradationPlan{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.DegradationPlan{}, targeting(r.Client, newPlanList), builder.WithPredicates(createOrDelete())).
		Watches(&v1alpha1.QwenService{}, targeting(r.Client, newPlanList), builder.WithPredicates(createOrDelete())).
		Complete(r)
}

func newPlanList() client.ObjectList { return &v1alpha1.DegradationPlanList{} }
