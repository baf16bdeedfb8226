package breaker

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// step is one event: at second `at`, either ask Allow (want = expected answer) or report an
// outcome of the earliest admitted request not yet reported; then the state must be `state`.
type step struct {
	at      float64
	allow   bool
	want    bool
	outcome Outcome
	state   State
}

func run(t *testing.T, b *Breaker, steps []step) {
	t.Helper()
	var admitted []Admission
	for i, s := range steps {
		if s.allow {
			a := b.Allow(at(s.at))
			if a.Admitted() != s.want {
				t.Fatalf("step %d: Allow at %vs = %v, want %v", i, s.at, a.Admitted(), s.want)
			}
			if a.Admitted() {
				admitted = append(admitted, a)
			}
		} else {
			if len(admitted) == 0 {
				t.Fatalf("step %d: an outcome without an admitted request", i)
			}
			admitted[0].Done(at(s.at), s.outcome)
			admitted = admitted[1:]
		}
		if got := b.State(at(s.at)); got != s.state {
			t.Fatalf("step %d: state at %vs = %v, want %v", i, s.at, got, s.state)
		}
	}
}

func TestOpensAfterThresholdAndRecovers(t *testing.T) {
	var changes []State
	b := New(Settings{FailureThreshold: 3, RecoveryTimeout: 30 * time.Second, HalfOpenRequests: 1}, func(s State) { changes = append(changes, s) })
	run(t, b, []step{
		{at: 0, allow: true, want: true, state: Closed},
		{at: 0, outcome: Failure, state: Closed},
		{at: 1, allow: true, want: true, state: Closed},
		{at: 1, outcome: Success, state: Closed}, // success resets the count
		{at: 2, allow: true, want: true, state: Closed},
		{at: 2, outcome: Failure, state: Closed},
		{at: 3, allow: true, want: true, state: Closed},
		{at: 3, outcome: Failure, state: Closed},
		{at: 4, allow: true, want: true, state: Closed},
		{at: 4, outcome: Failure, state: Open}, // third consecutive failure
		{at: 5, allow: true, want: false, state: Open},
		{at: 33.999, allow: true, want: false, state: Open},
		{at: 34, allow: true, want: true, state: HalfOpen},  // the probe
		{at: 34, allow: true, want: false, state: HalfOpen}, // only one probe at a time
		{at: 35, outcome: Success, state: Closed},
		{at: 35, allow: true, want: true, state: Closed},
	})
	want := []State{Closed, Open, HalfOpen, Closed}
	if len(changes) != len(want) {
		t.Fatalf("changes = %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("changes = %v, want %v", changes, want)
		}
	}
}

func TestFailedProbeReopens(t *testing.T) {
	b := New(Settings{FailureThreshold: 1, RecoveryTimeout: 10 * time.Second, HalfOpenRequests: 2}, nil)
	run(t, b, []step{
		{at: 0, allow: true, want: true, state: Closed},
		{at: 0, outcome: Failure, state: Open},
		{at: 10, allow: true, want: true, state: HalfOpen},
		{at: 10, allow: true, want: true, state: HalfOpen},
		{at: 10, allow: true, want: false, state: HalfOpen}, // two probes in flight
		{at: 11, outcome: Success, state: HalfOpen},
		{at: 11, allow: true, want: false, state: HalfOpen}, // one succeeded, one in flight: no more
		{at: 12, outcome: Failure, state: Open},             // reopens, timer restarts at 12
		{at: 21.5, allow: true, want: false, state: Open},
		{at: 22, allow: true, want: true, state: HalfOpen},
		{at: 22, allow: true, want: true, state: HalfOpen},
		{at: 23, outcome: Success, state: HalfOpen},
		{at: 23, outcome: Success, state: Closed},
	})
}

func TestIgnoredOutcomes(t *testing.T) {
	b := New(Settings{FailureThreshold: 2, RecoveryTimeout: time.Second, HalfOpenRequests: 1}, nil)
	run(t, b, []step{
		{at: 0, allow: true, want: true, state: Closed},
		{at: 0, outcome: Failure, state: Closed},
		{at: 0, allow: true, want: true, state: Closed},
		{at: 0, outcome: Ignored, state: Closed}, // neither resets nor counts
		{at: 0, allow: true, want: true, state: Closed},
		{at: 0, outcome: Failure, state: Open},
		{at: 1, allow: true, want: true, state: HalfOpen},
		{at: 1, outcome: Ignored, state: HalfOpen}, // frees the probe slot
		{at: 1, allow: true, want: true, state: HalfOpen},
		{at: 1, outcome: Success, state: Closed},
	})
}

func TestLateOutcomeWhileOpenIsDropped(t *testing.T) {
	b := New(Settings{FailureThreshold: 1, RecoveryTimeout: time.Second, HalfOpenRequests: 1}, nil)
	first, second := b.Allow(at(0)), b.Allow(at(0))
	first.Done(at(0), Failure)
	second.Done(at(0), Success) // admitted before opening
	if s := b.State(at(0.5)); s != Open {
		t.Fatalf("state = %v, want open", s)
	}
}

// TestOldOutcomeDuringHalfOpen: a request admitted while the breaker was closed that ends
// during half-open belongs to the old state: its success neither closes the breaker nor frees
// the probe's place, its failure does not reopen it.
func TestOldOutcomeDuringHalfOpen(t *testing.T) {
	for _, o := range []Outcome{Success, Failure, Ignored} {
		b := New(Settings{FailureThreshold: 1, RecoveryTimeout: time.Second, HalfOpenRequests: 1}, nil)
		old, failing := b.Allow(at(0)), b.Allow(at(0))
		failing.Done(at(0), Failure) // opens
		probe := b.Allow(at(1))
		if !probe.Admitted() {
			t.Fatal("no probe after the recovery timeout")
		}
		old.Done(at(1), o)
		if s := b.State(at(1)); s != HalfOpen {
			t.Fatalf("an old %v closed or reopened the half-open breaker: %v", o, s)
		}
		if b.Allow(at(1)).Admitted() {
			t.Fatalf("an old %v freed the probe's place", o)
		}
		probe.Done(at(1), Success)
		if s := b.State(at(1)); s != Closed {
			t.Fatalf("the probe's success: %v, want closed", s)
		}
		// And an outcome from before the breaker closed again is no longer counted either.
		stale, next := b.Allow(at(1)), b.Allow(at(1))
		next.Done(at(1), Failure) // threshold 1: open
		stale.Done(at(1.5), Success)
		if s := b.State(at(1.5)); s != Open {
			t.Fatalf("a stale success closed an open breaker: %v", s)
		}
	}
}

func TestConfigureKeepsState(t *testing.T) {
	b := New(Settings{FailureThreshold: 1, RecoveryTimeout: time.Minute, HalfOpenRequests: 1}, nil)
	a := b.Allow(at(0))
	a.Done(at(0), Failure)
	b.Configure(Settings{FailureThreshold: 5, RecoveryTimeout: time.Second})
	if s := b.State(at(0.5)); s != Open {
		t.Fatalf("state = %v, want open", s)
	}
	if s := b.State(at(1)); s != HalfOpen {
		t.Fatalf("state = %v, want half-open with the new timeout", s)
	}
}

// An admission reports once: the first outcome counts, later ones (a deferred Ignored) do
// not; a refused request has nothing to report.
func TestAdmissionReportsOnce(t *testing.T) {
	b := New(Settings{FailureThreshold: 2, RecoveryTimeout: time.Minute, HalfOpenRequests: 1}, nil)
	a := b.Allow(at(0))
	a.Done(at(0), Failure)
	a.Done(at(0), Failure)
	a.Done(at(0), Success)
	if s := b.State(at(0)); s != Closed {
		t.Fatalf("state = %v: one admission counted more than once", s)
	}
	second := b.Allow(at(1))
	second.Done(at(1), Failure)
	if s := b.State(at(1)); s != Open {
		t.Fatalf("state = %v, want open after two failures", s)
	}
	refused := b.Allow(at(2))
	if refused.Admitted() {
		t.Fatal("an open breaker admitted a request")
	}
	refused.Done(at(2), Success)
	if s := b.State(at(2)); s != Open {
		t.Fatalf("state = %v: a refused request's outcome counted", s)
	}
}

func TestStateString(t *testing.T) {
	if Closed.String() != "closed" || HalfOpen.String() != "half-open" || Open.String() != "open" {
		t.Fatal("state names")
	}
}
