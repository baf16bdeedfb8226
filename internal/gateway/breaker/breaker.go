// Package breaker is a consecutive-failure circuit breaker with an explicit clock.
//
// Closed: every request passes; FailureThreshold consecutive failures open the breaker.
// Open: nothing passes until RecoveryTimeout has elapsed, then the breaker is half-open.
// Half-open: at most HalfOpenRequests probes are in flight; when that many probes have
// succeeded the breaker closes, and any failed probe opens it again.
//
// Every admission belongs to the state it was let through in: an outcome reported after the
// breaker has changed state (a request admitted while closed that finishes during half-open)
// is not counted, so it neither closes the breaker nor frees a probe's place.
package breaker

import (
	"sync"
	"time"
)

// State is the breaker state; its numeric value is the qwen_gateway_upstream_circuit_state
// metric value.
type State int

// States.
const (
	Closed   State = 0
	HalfOpen State = 1
	Open     State = 2
)

// String returns the state name.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	default:
		return "open"
	}
}

// Outcome is the result of a request the breaker admitted.
type Outcome int

// Outcomes.
const (
	// Success is a response below 500.
	Success Outcome = iota
	// Failure is a 5xx response, a timeout or a connection error.
	Failure
	// Ignored is a request that says nothing about the upstream (the client went away, or
	// the upstream refused the client's request with a 4xx). A half-open probe that ends
	// Ignored frees its place for another probe.
	Ignored
)

// Settings configure a Breaker.
type Settings struct {
	FailureThreshold int
	RecoveryTimeout  time.Duration
	HalfOpenRequests int
}

// Breaker is safe for concurrent use.
type Breaker struct {
	mu        sync.Mutex
	s         Settings
	state     State
	failures  int       // consecutive failures while closed
	openedAt  time.Time // when the breaker last opened
	probes    int       // half-open probes in flight
	successes int       // half-open probes that succeeded
	epoch     uint64    // counts state changes; an admission carries the epoch it was let through in
	onChange  func(State)
}

// New returns a closed breaker. onChange, if not nil, is called (under the breaker's lock)
// with every new state.
func New(s Settings, onChange func(State)) *Breaker {
	b := &Breaker{onChange: onChange}
	b.Configure(s)
	if onChange != nil {
		onChange(Closed)
	}
	return b
}

// Configure replaces the settings, keeping the state.
func (b *Breaker) Configure(s Settings) {
	if s.FailureThreshold < 1 {
		s.FailureThreshold = 1
	}
	if s.HalfOpenRequests < 1 {
		s.HalfOpenRequests = 1
	}
	b.mu.Lock()
	b.s = s
	b.mu.Unlock()
}

// State returns the state at now (an open breaker whose timeout passed reports half-open).
func (b *Breaker) State(now time.Time) State {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	return b.state
}

// Admission is a request the breaker let through, or the zero value when it let none
// through. The outcome of an admitted request is reported once, with Done.
type Admission struct {
	b     *Breaker
	epoch uint64
}

// Admitted reports whether the request may go to the upstream.
func (a Admission) Admitted() bool { return a.b != nil }

// Done records the outcome of the admitted request. Only the first call counts, and a request
// that was not admitted has nothing to report, so a caller may report the real outcome as
// soon as it knows it and still defer Done(now, Ignored) for the paths that learn none.
func (a *Admission) Done(now time.Time, o Outcome) {
	if a.b == nil {
		return
	}
	b := a.b
	a.b = nil
	b.done(now, o, a.epoch)
}

// Allow decides whether a request may go to the upstream at now; the Admission it returns
// carries the request's outcome back with Done.
func (b *Breaker) Allow(now time.Time) Admission {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	switch b.state {
	case Closed:
		return Admission{b, b.epoch}
	case HalfOpen:
		if b.probes+b.successes < b.s.HalfOpenRequests {
			b.probes++
			return Admission{b, b.epoch}
		}
	}
	return Admission{}
}

// done records the outcome of a request that Allow admitted in epoch.
func (b *Breaker) done(now time.Time, o Outcome, epoch uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	if epoch != b.epoch {
		return // admitted in an earlier state: its outcome no longer counts
	}
	switch b.state {
	case Closed:
		switch o {
		case Success:
			b.failures = 0
		case Failure:
			b.failures++
			if b.failures >= b.s.FailureThreshold {
				b.open(now)
			}
		}
	case HalfOpen:
		if b.probes > 0 {
			b.probes--
		}
		switch o {
		case Success:
			b.successes++
			if b.successes >= b.s.HalfOpenRequests {
				b.set(Closed)
			}
		case Failure:
			b.open(now)
		}
	}
}

func (b *Breaker) advance(now time.Time) {
	if b.state == Open && !now.Before(b.openedAt.Add(b.s.RecoveryTimeout)) {
		b.set(HalfOpen)
	}
}

func (b *Breaker) open(now time.Time) {
	b.openedAt = now
	b.set(Open)
}

func (b *Breaker) set(s State) {
	b.state = s
	b.epoch++
	b.failures, b.probes, b.successes = 0, 0, 0
	if b.onChange != nil {
		b.onChange(s)
	}
}
