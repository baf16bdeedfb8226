package controllers

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/schedule"
	"github.com/qwenops/qwen-operator/internal/telemetry"
)

// unscaled is the adaptive scale when no adaptive rule holds.
const unscaled v1alpha1.Decimal = "1"

// policyInputs is everything a RateLimitPolicy's status depends on at one instant.
type policyInputs struct {
	policy *v1alpha1.RateLimitPolicy
	// targetExists reports whether the QwenService named by spec.targetRef exists.
	targetExists bool
	// olderPolicy names an older policy on the same target, "" when this one is the oldest.
	olderPolicy string
	// adaptive holds the values of the adaptive rules' triggers (nil without adaptive rules).
	adaptive readings
	now      time.Time
}

// policyStatus computes a RateLimitPolicy's status and when to look again (0: only on change).
// An accepted policy gets its effective policy (see effectivePolicy); a policy that cannot be
// accepted gets none, and the QwenService controller renders no limits for it: a rejected
// edit never reaches the gateway.
func policyStatus(in policyInputs) (v1alpha1.RateLimitPolicyStatus, time.Duration) {
	p := in.policy
	st := *p.Status.DeepCopy()
	st.ObservedGeneration = p.Generation
	set := func(typ string, ok bool, reason, msg string) {
		setCondition(&st.Conditions, p.Generation, in.now, condition(typ, ok, reason, msg))
	}
	reject := func(reason, msg string) (v1alpha1.RateLimitPolicyStatus, time.Duration) {
		st.Effective, st.ActiveSchedule, st.AdaptiveScale, st.NextTransitionTime = nil, "", "", nil
		set(v1alpha1.ConditionAccepted, false, reason, msg)
		set(v1alpha1.ConditionEnforced, false, ReasonNotEnforced, "the policy is not accepted; the gateway enforces none of its limits")
		return st, 0
	}

	loc, err := schedule.LoadLocation(p.Spec.Timezone)
	if err != nil {
		return reject(ReasonUnknownTimezone, fmt.Sprintf("spec.timezone: %v; use an IANA name such as Asia/Shanghai or UTC", err))
	}
	if !in.targetExists {
		return reject(ReasonTargetNotFound, fmt.Sprintf("spec.targetRef: QwenService %q does not exist in namespace %q", p.Spec.TargetRef.Name, p.Namespace))
	}
	if in.olderPolicy != "" {
		return reject(ReasonConflicted, fmt.Sprintf("RateLimitPolicy %q, created earlier, already targets QwenService %q; the older policy wins", in.olderPolicy, p.Spec.TargetRef.Name))
	}
	res, err := schedule.Evaluate(p.Spec.Schedules, p.Spec.Limits, loc, in.now)
	if err != nil {
		return reject(ReasonInvalidSchedule, fmt.Sprintf("spec.schedules: %v", err))
	}
	scale, held := adaptiveScale(p.Spec.Adaptive, in.adaptive, st.AdaptiveScale)
	eff, err := effectivePolicy(p.Spec, res.Limits, scale)
	if err != nil {
		return reject(ReasonInvalidSchedule, fmt.Sprintf("spec.adaptive: %v", err))
	}
	st.Effective = eff
	st.ActiveSchedule = res.Active
	st.AdaptiveScale = scale
	st.NextTransitionTime = nil
	if !res.Next.IsZero() {
		st.NextTransitionTime = &metav1.Time{Time: res.Next}
	}

	set(v1alpha1.ConditionAccepted, true, ReasonAccepted, "the policy is valid and the only one on its target")
	msg := fmt.Sprintf("QwenService %q renders these limits into its gateway and edge", p.Spec.TargetRef.Name)
	reason := ReasonEnforced
	if held {
		why := errors.Join(in.adaptive.err, errNoDataFor(in.adaptive.noData))
		reason = telemetry.Reason(why)
		msg += fmt.Sprintf("; adaptive scale held at %s: %v", scale, why)
	}
	set(v1alpha1.ConditionEnforced, true, reason, msg)

	var requeue time.Duration
	if !res.Next.IsZero() {
		requeue = res.Next.Sub(in.now)
	}
	return st, requeue
}

// effectivePolicy resolves an accepted policy at one instant: its settings as written, the
// base limits (scheduled: the active schedule's merged over spec.limits) and each override's
// limits merged over them, every tier scaled by scale. This is the one place a policy's limits
// are worked out; the renderer and the gateway copy the result.
func effectivePolicy(spec v1alpha1.RateLimitPolicySpec, scheduled v1alpha1.LimitSet, scale v1alpha1.Decimal) (*v1alpha1.EffectivePolicy, error) {
	base, err := schedule.Scale(scheduled, scale)
	if err != nil {
		return nil, err
	}
	e := &v1alpha1.EffectivePolicy{Mode: spec.Mode, Key: spec.Key, Algorithm: spec.Algorithm, FailureMode: spec.FailureMode,
		AssumedMaxTokens: spec.AssumedMaxTokens, Queue: spec.Queue.DeepCopy(), Limits: capLog(spec.Algorithm, base),
		Criticality: spec.Criticality, CriticalityHeader: spec.CriticalityHeader}
	for _, o := range spec.Overrides {
		limits, err := schedule.Scale(schedule.Merge(scheduled, o.Limits), scale)
		if err != nil {
			return nil, err
		}
		cl := o.Criticality
		if cl == "" {
			cl = spec.Criticality
		}
		e.Overrides = append(e.Overrides, v1alpha1.EffectiveOverride{Name: o.Name, Keys: slices.Clone(o.Keys),
			Limits: capLog(spec.Algorithm, limits), Criticality: cl})
	}
	return e, nil
}

// capLog caps requestsPerMinute at what a SlidingLog holds (an adaptive scale above 1 may
// raise it past the schema's bound, which the spec alone is checked against).
func capLog(alg v1alpha1.Algorithm, l v1alpha1.LimitSet) v1alpha1.LimitSet {
	if alg == v1alpha1.AlgorithmSlidingLog && l.RequestsPerMinute != nil && *l.RequestsPerMinute > v1alpha1.MaxSlidingLogRequestsPerMinute {
		l.RequestsPerMinute = ptr.To[int32](v1alpha1.MaxSlidingLogRequestsPerMinute)
	}
	return l
}

// adaptiveScale is the smallest scale of the rules whose trigger holds ("1" when none does).
// When a rule's value is missing the previous scale is held: missing data never loosens or
// tightens the limits.
func adaptiveScale(rules []v1alpha1.AdaptiveRule, r readings, prev v1alpha1.Decimal) (v1alpha1.Decimal, bool) {
	if len(rules) == 0 {
		return unscaled, false
	}
	best, bestV, matched := unscaled, 0.0, false
	for _, rule := range rules {
		v, ok := r.values[rule.Key()]
		if !ok {
			if prev == "" {
				prev = unscaled
			}
			return prev, true
		}
		above, err1 := strconv.ParseFloat(string(rule.Above), 64)
		scale, err2 := strconv.ParseFloat(string(rule.Scale), 64)
		if err1 != nil || err2 != nil { // the schema's pattern makes this unreachable
			continue
		}
		if v > above && (!matched || scale < bestV) {
			best, bestV, matched = rule.Scale, scale, true
		}
	}
	return best, false
}

// errNoDataFor names the signals that returned no data, nil when none.
func errNoDataFor(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return fmt.Errorf("%w for %v", telemetry.ErrNoData, keys)
}
