package degrade

import "time"

// Restore rebuilds the State of a plan that was at level since the given time, e.g. from
// status after an operator restart. The triggers of that level count as tripped, so the level
// is held until their values fall to the recovery threshold — a restart never lowers the
// level by itself; only pending `for` periods restart.
func (p *Plan) Restore(level int32, since time.Time) State {
	s := State{Level: level, Since: since, Triggers: map[string]TriggerState{}}
	for _, l := range p.levels {
		if l.n != level {
			continue
		}
		for _, t := range l.triggers {
			s.Triggers[t.id] = TriggerState{Tripped: true, AboveSince: since}
		}
	}
	return s
}
