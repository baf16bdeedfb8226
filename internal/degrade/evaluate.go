package degrade

import (
	"fmt"
	"math"
	"time"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

// State is what Evaluate remembers between calls. The zero State is level 0. After an
// operator restart, rebuild it from status with Plan.Restore: a State with no trigger
// states would step down at once after the cooldown.
type State struct {
	// Level in force, 0..4.
	Level int32
	// Since is when Level began (the first evaluation, for level 0).
	Since time.Time
	// Overridden is true while Level comes from spec.override.
	Overridden bool
	// Triggers by trigger id ("L2/GPUTemperature>83"); triggers not in the plan are dropped.
	Triggers map[string]TriggerState
}

// TriggerState is one trigger's memory.
type TriggerState struct {
	// AboveSince is when the value was first seen above the threshold in the current run
	// of values above it; zero while it is not above.
	AboveSince time.Time
	// Tripped is set once the value has been above for the level's `for`, and cleared when
	// it falls to the recovery threshold or lower.
	Tripped bool
}

// Decision is the outcome of one evaluation.
type Decision struct {
	// Level to apply, 0..4.
	Level int32
	// Reasons the level holds, most severe first, with the measured values, such as
	// "GPUTemperature=86.0 > 83 for 1m (L2)"; empty at level 0 without an override.
	Reasons []string
	// Changed is true when Level differs from the previous state's.
	Changed bool
}

// Evaluate advances prev to now given the measured values (keyed by Trigger.Key; a missing or
// NaN value is no data) and returns the new state and the decision. It does not modify prev.
func (p *Plan) Evaluate(prev State, values map[string]float64, now time.Time) (State, Decision) {
	next := State{Level: prev.Level, Since: prev.Since, Triggers: make(map[string]TriggerState)}
	var wanted int32
	for _, l := range p.levels {
		for _, t := range l.triggers {
			ts := prev.Triggers[t.id]
			if v, ok := value(values, t.key); ok {
				ts = step(ts, t, l.hold, v, now)
			}
			if ts != (TriggerState{}) {
				next.Triggers[t.id] = ts
			}
			if ts.Tripped {
				wanted = max(wanted, l.n)
			}
		}
	}

	level := prev.Level
	switch {
	case p.override != nil:
		level, next.Overridden = p.override.Level, true
	case prev.Overridden, wanted > prev.Level:
		level = wanted
	case wanted < prev.Level && now.Sub(prev.Since) >= p.cooldown:
		level = wanted
	}
	d := Decision{Level: level, Changed: level != prev.Level}
	if d.Changed || next.Since.IsZero() {
		next.Level, next.Since = level, now
	}

	if p.override != nil {
		d.Reasons = []string{overrideReason(p.override)}
		return next, d
	}
	if wanted < level {
		d.Reasons = append(d.Reasons, fmt.Sprintf("cooling down: L%d until %s, then L%d",
			level, next.Since.Add(p.cooldown).UTC().Format(time.RFC3339), wanted))
	}
	for i := len(p.levels) - 1; i >= 0; i-- {
		l := p.levels[i]
		for _, t := range l.triggers {
			if next.Triggers[t.id].Tripped {
				v, ok := value(values, t.key)
				d.Reasons = append(d.Reasons, triggerReason(t, l, v, ok))
			}
		}
	}
	return next, d
}

// step moves one trigger's state given a measured value.
func step(ts TriggerState, t trigger, hold time.Duration, v float64, now time.Time) TriggerState {
	if v > t.above {
		if ts.AboveSince.IsZero() {
			ts.AboveSince = now
		}
		if now.Sub(ts.AboveSince) >= hold {
			ts.Tripped = true
		}
		return ts
	}
	ts.AboveSince = time.Time{}
	if v <= t.clear {
		ts.Tripped = false
	}
	return ts
}

func value(values map[string]float64, key string) (float64, bool) {
	v, ok := values[key]
	return v, ok && !math.IsNaN(v)
}

func overrideReason(o *v1alpha1.LevelOverride) string {
	if o.Reason == "" {
		return fmt.Sprintf("manual override (L%d)", o.Level)
	}
	return fmt.Sprintf("override: %s (L%d)", o.Reason, o.Level)
}

// triggerReason explains a tripped trigger.
func triggerReason(t trigger, l level, v float64, ok bool) string {
	switch {
	case !ok:
		return fmt.Sprintf("%s: no data, holding (L%d)", t.key, l.n)
	case v > t.above && l.hold > 0:
		return fmt.Sprintf("%s=%s > %s for %s (L%d)", t.key, FormatValue(v), t.aboveText, formatDuration(l.hold), l.n)
	case v > t.above:
		return fmt.Sprintf("%s=%s > %s (L%d)", t.key, FormatValue(v), t.aboveText, l.n)
	default:
		return fmt.Sprintf("%s=%s, clears at %s (L%d)", t.key, FormatValue(v), FormatValue(t.clear), l.n)
	}
}
