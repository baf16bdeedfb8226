package gateway

import (
	"net/http"
	"strings"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// class is a request's criticality: the RateLimitPolicy assigns it (per tier, or from a header
// a trusted proxy set); it decides the degradation level the request gets (state.levelFor) and
// its place in a LeakyBucket queue (Critical first).
type class uint8

// The classes, most critical first.
const (
	classCritical class = iota
	classStandard
	classSheddable
)

var classNames = [...]string{"Critical", "Standard", "Sheddable"}

func (c class) String() string { return classNames[c] }

// criticalityHeader is the response header that says a request's class.
const criticalityHeader = "X-Qwen-Criticality"

// parseClass reads a class name (case-insensitively); ok=false for anything else.
func parseClass(s string) (class, bool) {
	for i, n := range classNames {
		if strings.EqualFold(s, n) {
			return class(i), true
		}
	}
	return classStandard, false
}

// classOf is the class a config names; empty (an override without its own) is def.
func classOf(c gatewayconfig.Criticality, def class) class {
	if cl, ok := parseClass(string(c)); ok {
		return cl
	}
	return def
}

// classify returns a request's class: the policy's criticality header when the connection
// comes from a trusted proxy (gatewayconfig.Config.TrustedProxies; never without them) and
// the header is set, else its tier's class. A trusted header naming no class is a 400 that
// names the header; an untrusted one is ignored.
func (p *policy) classify(r *http.Request, c client, tr trust) (class, *apiError) {
	t := p.tierFor(c)
	if p.classHeader == "" || len(tr.proxies) == 0 {
		return t.class, nil
	}
	v := r.Header.Get(p.classHeader)
	if v == "" {
		return t.class, nil
	}
	if peer := parseAddr(r.RemoteAddr); !peer.IsValid() || !isTrusted(peer, tr.proxies) {
		return t.class, nil
	}
	cl, ok := parseClass(v)
	if !ok {
		return t.class, invalidRequest(http.StatusBadRequest,
			"The "+p.classHeader+" header must be Critical, Standard or Sheddable.", p.classHeader, "invalid_criticality")
	}
	return cl, nil
}

// levelFor is the degradation level a request of class cl gets: at level 0 none; above it,
// Standard gets the level, Sheddable sheddableAhead more (at most 4) and Critical at most
// criticalMax.
func (st *state) levelFor(cl class) int {
	if st.level == 0 {
		return 0
	}
	switch cl {
	case classCritical:
		return min(st.level, st.criticalMax)
	case classSheddable:
		return min(st.level+st.sheddableAhead, 4)
	}
	return st.level
}
