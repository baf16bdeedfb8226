package gateway

import (
	"time"
)

// route is where a request goes and how it is rewritten, per the degradation level and the
// circuit breakers.
type route struct {
	level  int       // the degradation level in force (0: none)
	target *upstream // nil: static reply, or 503 when none is configured
	rw     rewrite
}

// route applies the degradation level, which is cumulative: L1 calls the engine without
// streaming, L2 turns thinking off, L3 uses the fallback (without one it acts as L2), L4
// answers statically. While the chosen upstream's breaker is open, the primary's traffic goes
// to the fallback when its breaker admits it, else gets the static reply. A target returned
// here holds a breaker admission: the caller must report its outcome.
func (st *state) route(req *request, now time.Time) route {
	rt := route{level: st.level}
	if st.level >= 4 {
		return rt
	}
	target := st.primary
	if st.level >= 3 && st.fallback != nil {
		target = st.fallback
	}
	if !target.breaker.Allow(now) {
		if target != st.primary || st.fallback == nil || !st.fallback.breaker.Allow(now) {
			return rt
		}
		target = st.fallback
	}
	rt.target = target
	rt.rw = rewrite{model: target.model, stream: req.stream && st.level < 1, disableThinking: st.level >= 2}
	return rt
}
