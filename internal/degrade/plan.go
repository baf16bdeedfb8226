package degrade

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

// ErrInvalidPlan is wrapped by NewPlan for a spec the schema should have refused.
var ErrInvalidPlan = errors.New("invalid degradation plan")

// Plan is a validated DegradationPlan spec, ready to evaluate.
type Plan struct {
	levels   []level // ascending by number
	cooldown time.Duration
	override *v1alpha1.LevelOverride
	inputs   []v1alpha1.Trigger
}

type level struct {
	n        int32
	hold     time.Duration // the level's `for`
	triggers []trigger
}

type trigger struct {
	id        string // unique per level and threshold: the key of State.Triggers
	key       string // the key of the measured value, see v1alpha1.Trigger.Key
	above     float64
	aboveText v1alpha1.Decimal
	clear     float64 // values at or below this clear a tripped trigger
}

// NewPlan validates a spec (level numbers 1..4 and unique, thresholds that parse, a query for
// every PromQL trigger) and compiles it.
func NewPlan(spec v1alpha1.DegradationPlanSpec) (*Plan, error) {
	if spec.Cooldown.Duration < 0 {
		return nil, fmt.Errorf("%w: cooldown %v is negative", ErrInvalidPlan, spec.Cooldown.Duration)
	}
	if spec.RecoveryMargin < 0 || spec.RecoveryMargin > 100 {
		return nil, fmt.Errorf("%w: recoveryMargin %d is not a percentage 0..100", ErrInvalidPlan, spec.RecoveryMargin)
	}
	if o := spec.Override; o != nil && (o.Level < v1alpha1.LevelNormal || o.Level > v1alpha1.LevelStaticResponse) {
		return nil, fmt.Errorf("%w: override.level %d is not 0..4", ErrInvalidPlan, o.Level)
	}
	p := &Plan{cooldown: spec.Cooldown.Duration, override: spec.Override}
	seenKey := map[string]bool{}
	keep := 1 - float64(spec.RecoveryMargin)/100
	for _, l := range spec.Levels {
		if l.Level < v1alpha1.LevelDisableStreaming || l.Level > v1alpha1.LevelStaticResponse {
			return nil, fmt.Errorf("%w: level %d is not 1..4", ErrInvalidPlan, l.Level)
		}
		if slices.ContainsFunc(p.levels, func(x level) bool { return x.n == l.Level }) {
			return nil, fmt.Errorf("%w: level %d is listed twice", ErrInvalidPlan, l.Level)
		}
		if len(l.When) == 0 {
			return nil, fmt.Errorf("%w: level %d has no triggers", ErrInvalidPlan, l.Level)
		}
		lv := level{n: l.Level}
		if l.For != nil {
			if l.For.Duration < 0 {
				return nil, fmt.Errorf("%w: level %d: for %v is negative", ErrInvalidPlan, l.Level, l.For.Duration)
			}
			lv.hold = l.For.Duration
		}
		for _, w := range l.When {
			if (w.Signal == v1alpha1.SignalPromQL) != (w.Query != "") {
				return nil, fmt.Errorf("%w: level %d: signal %s: a query is required for PromQL and not allowed otherwise", ErrInvalidPlan, l.Level, w.Signal)
			}
			above, err := strconv.ParseFloat(string(w.Above), 64)
			if err != nil || above < 0 {
				return nil, fmt.Errorf("%w: level %d: %s above %q is not a non-negative decimal", ErrInvalidPlan, l.Level, w.Signal, w.Above)
			}
			k := w.Key()
			lv.triggers = append(lv.triggers, trigger{
				id:  fmt.Sprintf("L%d/%s>%s", l.Level, k, w.Above),
				key: k, above: above, aboveText: w.Above, clear: above * keep,
			})
			if !seenKey[k] {
				seenKey[k] = true
				p.inputs = append(p.inputs, w)
			}
		}
		p.levels = append(p.levels, lv)
	}
	slices.SortFunc(p.levels, func(a, b level) int { return int(a.n - b.n) })
	return p, nil
}

// Inputs returns one trigger per distinct Trigger.Key, in spec order: the queries to run before
// each Evaluate.
func (p *Plan) Inputs() []v1alpha1.Trigger { return slices.Clone(p.inputs) }
