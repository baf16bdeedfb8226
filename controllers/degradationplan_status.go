package controllers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/degrade"
	"github.com/qwenops/qwen-operator/internal/telemetry"
)

// historyLimit is how many level transitions status.history keeps.
const historyLimit = 10

// planInputs is everything a DegradationPlan's status depends on at one instant.
type planInputs struct {
	plan *v1alpha1.DegradationPlan
	// compiled is the validated plan, nil when compileErr is set.
	compiled   *degrade.Plan
	compileErr error
	// targetExists reports whether the QwenService named by spec.targetRef exists.
	targetExists bool
	// olderPlan names an older plan on the same target, "" when this one is the oldest.
	olderPlan string
	// read holds the triggers' values.
	read readings
	// state is the evaluator's memory from the last evaluation (or restored from status).
	state degrade.State
	now   time.Time
}

// planStatus computes a DegradationPlan's status and the evaluator's next state. A plan that
// cannot be accepted, or cannot read Prometheus, keeps its level: missing data never raises
// or lowers it.
func planStatus(in planInputs) (v1alpha1.DegradationPlanStatus, degrade.State) {
	p := in.plan
	st := *p.Status.DeepCopy()
	st.ObservedGeneration = p.Generation
	set := func(typ string, ok bool, reason, msg string) {
		setCondition(&st.Conditions, p.Generation, in.now, condition(typ, ok, reason, msg))
	}
	setDegraded := func() {
		if st.Level == v1alpha1.LevelNormal {
			set(v1alpha1.ConditionDegraded, false, ReasonNormal, "level 0: no degradation")
			return
		}
		msg := fmt.Sprintf("level %d", st.Level)
		if st.Since != nil {
			msg += " since " + st.Since.UTC().Format(time.RFC3339)
		}
		set(v1alpha1.ConditionDegraded, true, levelReasons[st.Level], msg)
	}
	reject := func(reason, msg string) (v1alpha1.DegradationPlanStatus, degrade.State) {
		set(v1alpha1.ConditionAccepted, false, reason, msg)
		setDegraded()
		return st, in.state
	}
	switch {
	case in.compileErr != nil:
		return reject(ReasonInvalidPlan, fmt.Sprintf("spec: %v", in.compileErr))
	case !in.targetExists:
		return reject(ReasonTargetNotFound, fmt.Sprintf("spec.targetRef: QwenService %q does not exist in namespace %q; the level is held", p.Spec.TargetRef.Name, p.Namespace))
	case in.olderPlan != "":
		return reject(ReasonConflicted, fmt.Sprintf("DegradationPlan %q, created earlier, already targets QwenService %q; the older plan wins", in.olderPlan, p.Spec.TargetRef.Name))
	}

	if errors.Is(in.read.err, telemetry.ErrBadQuery) {
		set(v1alpha1.ConditionAccepted, false, telemetry.ReasonInvalidQuery, fmt.Sprintf("Prometheus rejected a query: %v", in.read.err))
	} else {
		set(v1alpha1.ConditionAccepted, true, ReasonAccepted, "the plan is valid and the only one on its target")
	}
	switch {
	case in.read.unavailable() || errors.Is(in.read.err, telemetry.ErrInvalidConnection):
		set(v1alpha1.ConditionTelemetryAvailable, false, telemetry.Reason(in.read.err), fmt.Sprintf("%v; level %d is held until telemetry returns", in.read.err, st.Level))
	case in.read.err != nil:
		set(v1alpha1.ConditionTelemetryAvailable, true, telemetry.Reason(in.read.err), fmt.Sprintf("some queries failed, their triggers hold: %v", in.read.err))
	case len(in.read.noData) > 0:
		set(v1alpha1.ConditionTelemetryAvailable, true, telemetry.ReasonNoData, fmt.Sprintf("no data for %s; those triggers hold their state", strings.Join(in.read.noData, ", ")))
	default:
		set(v1alpha1.ConditionTelemetryAvailable, true, telemetry.ReasonQueriesSucceeded, "every signal was read")
	}

	next, d := in.compiled.Evaluate(in.state, in.read.values, in.now)
	if st.Signals == nil && len(in.read.values) > 0 {
		st.Signals = map[string]string{}
	}
	for k, v := range in.read.values {
		st.Signals[k] = degrade.FormatValue(v)
	}
	st.Level = d.Level
	st.Reasons = d.Reasons
	if d.Changed || st.Since == nil {
		st.Since = &metav1.Time{Time: next.Since}
	}
	if d.Changed {
		st.History = append(st.History, v1alpha1.LevelTransition{Level: d.Level, Time: metav1.Time{Time: in.now}, Reason: transitionReason(d)})
		if n := len(st.History); n > historyLimit {
			st.History = st.History[n-historyLimit:]
		}
	}
	setDegraded()
	return st, next
}

// transitionReason is the history entry's reason: the most severe reason, or recovery.
func transitionReason(d degrade.Decision) string {
	if len(d.Reasons) > 0 {
		return d.Reasons[0]
	}
	return "all triggers cleared"
}
