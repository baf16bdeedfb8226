package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
)

// servedProbe says whether the API server serves an optional kind (a CRD that may be
// installed or removed at any time). It asks the RESTMapper at most once per ttl, since every
// miss costs a discovery round trip.
type servedProbe struct {
	mapper meta.RESTMapper
	gvk    schema.GroupVersionKind
	clock  clock.PassiveClock
	ttl    time.Duration

	mu      sync.Mutex
	checked time.Time
	served  bool
}

func newServedProbe(mapper meta.RESTMapper, gvk schema.GroupVersionKind, c clock.PassiveClock, ttl time.Duration) *servedProbe {
	return &servedProbe{mapper: mapper, gvk: gvk, clock: c, ttl: ttl}
}

// Served reports whether the kind was served at the last check. An answer other than "no
// match" (a discovery hiccup) keeps the previous one.
func (p *servedProbe) Served() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	if !p.checked.IsZero() && now.Sub(p.checked) < p.ttl {
		return p.served
	}
	_, err := p.mapper.RESTMapping(p.gvk.GroupKind(), p.gvk.Version)
	switch {
	case err == nil:
		p.served = true
	case meta.IsNoMatchError(err):
		p.served = false
	}
	p.checked = now
	return p.served
}

// expire makes the next Served ask the RESTMapper again.
func (p *servedProbe) expire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checked = time.Time{}
}
