package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"
)

// countingMapper serves its kinds and counts the lookups.
type countingMapper struct {
	meta.RESTMapper
	served bool
	calls  int
}

func (m *countingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	m.calls++
	if !m.served {
		return nil, &meta.NoKindMatchError{GroupKind: gk, SearchedVersions: versions}
	}
	return &meta.RESTMapping{}, nil
}

func TestServedProbeCachesForTTL(t *testing.T) {
	m := &countingMapper{}
	clk := clocktesting.NewFakePassiveClock(t0)
	p := newServedProbe(m, backendTrafficPolicyGVK, clk, time.Minute)
	if p.Served() || p.Served() || m.calls != 1 {
		t.Fatalf("served=%v calls=%d, want false from one lookup", p.Served(), m.calls)
	}
	m.served = true // the CRD is installed
	clk.SetTime(t0.Add(59 * time.Second))
	if p.Served() {
		t.Error("the answer changed within the TTL")
	}
	clk.SetTime(t0.Add(61 * time.Second))
	if !p.Served() || m.calls != 2 {
		t.Errorf("served=%v calls=%d after the TTL, want true from a second lookup", p.Served(), m.calls)
	}
}
