package ratelimit

// SlidingLog in memory: the admissions of the last window as a ring of (time, units) entries,
// oldest first. lua/slidelog.lua keeps the same log in a Redis sorted set (a member per unit)
// and decides the same way; the conformance suite runs both.
//
// An entry admitted at t counts at now while now < t + window. The log holds at most limit
// units (Adjust charges stop there), so at most limit entries: 16 bytes each.

// logEntry is one admission: units at t (ticks).
type logEntry struct{ t, n int64 }

// logState is the log of one (key, rule).
type logState struct {
	ring       []logEntry // capacity a power of two, grown as needed up to limit entries
	head, size int        // the oldest entry and the number of entries
	used       int64      // units in the log
	last       int64      // the latest time seen (for idle)
}

func (l *logState) at(i int) *logEntry { return &l.ring[(l.head+i)&(len(l.ring)-1)] }

// expire drops the entries that no longer count at now.
func (l *logState) expire(p *params, now int64) {
	for l.size > 0 {
		e := l.at(0)
		if now < e.t+p.window {
			return
		}
		l.used -= e.n
		l.head = (l.head + 1) & (len(l.ring) - 1)
		l.size--
	}
}

// push appends units at t (the newest time), merging with an entry at the same t.
func (l *logState) push(t, n int64) {
	if n <= 0 {
		return
	}
	l.used += n
	if l.size > 0 {
		if e := l.at(l.size - 1); e.t == t {
			e.n += n
			return
		}
	}
	if l.size == len(l.ring) {
		grown := make([]logEntry, max(4, 2*len(l.ring)))
		for i := range l.size {
			grown[i] = *l.at(i)
		}
		l.ring, l.head = grown, 0
	}
	*l.at(l.size) = logEntry{t, n}
	l.size++
}

// clock returns now, or the newest entry's time if now is earlier: time never runs
// backwards for a log.
func (l *logState) clock(now int64) int64 {
	l.last = max(l.last, now)
	if l.size > 0 {
		return max(now, l.at(l.size-1).t)
	}
	return now
}

// allow decides n units at now and logs them when the log's units in the window plus n are
// at most limit.
func (l *logState) allow(p *params, n, now int64) outcome {
	now = l.clock(now)
	l.expire(p, now)
	o := outcome{ok: true}
	switch {
	case n > p.limit:
		o.ok = false
	case l.used+n > p.limit:
		// wait until enough of the oldest units expire
		o.ok = false
		need, freed := l.used+n-p.limit, int64(0)
		for i := 0; i < l.size; i++ {
			e := l.at(i)
			if freed += e.n; freed >= need {
				o.retry = e.t + p.window - now
				break
			}
		}
	default:
		l.push(now, n)
	}
	o.remaining, o.reset = l.status(p, now)
	if !o.ok && n > p.limit {
		o.retry = max(o.reset, p.window)
	}
	return o
}

// status returns the units that still fit and the time until the log is empty.
func (l *logState) status(p *params, now int64) (remaining, reset int64) {
	remaining = max(p.limit-l.used, 0)
	if l.size > 0 {
		reset = l.at(l.size-1).t + p.window - now
	}
	return remaining, reset
}

// adjust logs a charge at now (at most up to limit units in the log) or removes a refund's
// units from the newest entries.
func (l *logState) adjust(p *params, delta, now int64) {
	now = l.clock(now)
	l.expire(p, now)
	if delta > 0 {
		l.push(now, min(delta, p.limit-l.used))
		return
	}
	for delta < 0 && l.size > 0 {
		e := l.at(l.size - 1)
		take := min(e.n, -delta)
		e.n -= take
		l.used -= take
		delta += take
		if e.n == 0 {
			l.size--
		}
	}
}

// idle reports whether the log is empty at now and was last touched more than two windows
// ago, so it can be dropped.
func (l *logState) idle(p *params, now int64) bool {
	l.expire(p, max(now, l.last))
	return l.size == 0 && now-l.last > 2*p.window
}
