package ratelimit

import (
	"slices"
	"testing"
	"time"
)

// clone is a deep copy of nd's state.
func (nd *node) clone() *node {
	c := *nd
	if nd.log != nil {
		l := *nd.log
		l.ring = slices.Clone(l.ring)
		c.log = &l
	}
	return &c
}

// FuzzRetryAfterIsExact drives every algorithm with arbitrary charges, refunds and requests
// at arbitrary instants. Whenever a request that fits the rule's capacity is rejected, its
// RetryAfter must be exact: the same request is still rejected a microsecond earlier and
// admitted at now + RetryAfter, if no other traffic arrives (a Retry-After longer than needed
// makes clients wait for nothing; a shorter one makes them fail again).
func FuzzRetryAfterIsExact(f *testing.F) {
	f.Add(uint8(0), uint16(30), uint16(60000), uint16(10), []byte{1, 2, 3, 200, 5, 6, 7, 8, 9, 250, 1, 1})
	f.Add(uint8(2), uint16(5), uint16(1000), uint16(0), []byte{10, 0, 10, 0, 10, 0, 255, 255, 10, 0})
	f.Add(uint8(3), uint16(1), uint16(1), uint16(1), []byte{0, 1, 0, 1, 0, 1})
	f.Add(uint8(1), uint16(100), uint16(500), uint16(7), []byte{3, 130, 3, 131, 3, 4, 3})
	// A charge far over the limit (a true-up) then small requests: debt spreads over windows.
	f.Add(uint8(2), uint16(10), uint16(2000), uint16(0), []byte{0, 255, 1, 1, 1, 1, 90, 1})
	// A LeakyBucket queue, a SlidingLog, an hourly window (ticks of a second).
	f.Add(uint8(6), uint16(4), uint16(2000), uint16(3), []byte{0, 1, 0, 1, 0, 1, 0, 1, 3, 1, 0, 201, 0, 1})
	f.Add(uint8(5), uint16(3), uint16(1000), uint16(0), []byte{0, 1, 10, 1, 10, 1, 10, 1, 0, 202, 0, 1, 30, 1})
	f.Add(uint8(2), uint16(50), uint16(53600), uint16(0), []byte{0, 20, 30, 20, 30, 20, 1, 255, 20, 20})
	f.Fuzz(func(t *testing.T, alg uint8, limit, windowMs, burst uint16, ops []byte) {
		r := Rule{Algorithm: []Algorithm{Hybrid, TokenBucket, SlidingWindow, FixedWindow, LeakyBucket, SlidingLog, LeakyBucket}[alg%7],
			Limit: int64(limit%1000) + 1, Window: time.Duration(windowMs%5000+1) * time.Millisecond, Burst: int64(burst % 1000)}
		if windowMs >= 50000 { // a long window, decided in seconds
			r.Window = time.Duration((windowMs-50000)%7200+61) * time.Second
		}
		if alg%7 == 6 { // LeakyBucket as a queue: wait up to a few drain intervals
			r.MaxWait = r.Window * time.Duration(burst%7) / time.Duration(r.Limit)
		}
		p, err := r.params()
		if err != nil {
			t.Fatal(err)
		}
		wait, err := p.waitTicks(&r)
		if err != nil {
			t.Fatal(err)
		}
		nd := newNode(p)
		now := int64(1_700_000_000_000_000)
		windowUs := p.window * p.tick
		for i := 0; i+1 < len(ops); i += 2 {
			now += int64(ops[i]) * windowUs / 64 // up to four windows between steps
			arg := int64(ops[i+1])
			switch {
			case arg >= 250: // a true-up charge beyond the limit
				nd.charge((arg-249)*p.limit, now)
			case arg >= 200: // a refund
				nd.charge(-(arg - 199), now)
			default:
				n := arg%min(p.limit, p.burst) + 1
				before := nd.clone()
				o := nd.decide(n, now, wait)
				if o.ok {
					if o.wait > r.MaxWait.Microseconds() {
						t.Fatalf("%+v: admitted %d at %d to wait %dµs, more than MaxWait", r, n, now, o.wait)
					}
					continue
				}
				if o.retry <= 0 {
					t.Fatalf("%+v: rejected %d at %d with retry %d", r, n, now, o.retry)
				}
				if !before.clone().decide(n, now+o.retry, wait).ok {
					t.Fatalf("%+v state %+v: %d rejected at now+retry (%dµs)", r, before, n, o.retry)
				}
				if o.retry > 1 && before.clone().decide(n, now+o.retry-1, wait).ok {
					t.Fatalf("%+v state %+v: %d admitted before now+retry (%dµs)", r, before, n, o.retry)
				}
			}
		}
	})
}
