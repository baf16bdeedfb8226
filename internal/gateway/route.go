package gateway

import (
	"time"

	"github.com/qwenops/qwen-operator/internal/gateway/breaker"
)

// route is where a request goes and how it is rewritten, per the degradation level and the
// circuit breakers.
type route struct {
	level  int       // the degradation level in force (0: none)
	target *upstream // nil: static reply, or 503 when none is configured
	// pass is target's breaker admission: the request's outcome goes back through it.
	pass breaker.Admission
	rw   rewrite
}

// route applies a request's degradation level (the plan's, per its class: see
// state.levelFor), which is cumulative: L1 calls the engine without streaming, L2 turns
// thinking off, L3 uses the fallback (without one it acts as L2), L4 answers statically. While
// the chosen upstream's breaker is open, the primary's traffic goes to the fallback when its
// breaker admits it, else gets the static reply. A route with a target holds its breaker
// admission (pass): the caller reports the outcome through it. Responses and embeddings pass
// through: L1 and L2 do not rewrite them, and embeddings never go to the fallback.
func (st *state) route(req *request, level int, now time.Time) route {
	rt := route{level: level}
	if level >= 4 {
		return rt
	}
	target := st.primary
	// Embeddings never go to the fallback: its vectors are not comparable with the primary's.
	fallback := st.fallback
	if req.ep == embeddingsEndpoint {
		fallback = nil
	}
	if level >= 3 && fallback != nil {
		target = fallback
	}
	pass := target.breaker.Allow(now)
	if !pass.Admitted() {
		if target != st.primary || fallback == nil {
			return rt
		}
		if pass = st.fallback.breaker.Allow(now); !pass.Admitted() {
			return rt
		}
		target = st.fallback
	}
	rt.target, rt.pass = target, pass
	rt.rw = rewrite{model: target.model, stream: req.stream && level < 1, disableThinking: level >= 2}
	if !req.ep.completion() { // L1 and L2 rewrite completions only
		rt.rw.stream, rt.rw.disableThinking = req.stream, false
	}
	return rt
}
