package ratelimit

import (
	"testing"
	"time"
)

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
	f.Fuzz(func(t *testing.T, alg uint8, limit, windowMs, burst uint16, ops []byte) {
		r := Rule{Algorithm: []Algorithm{Hybrid, TokenBucket, SlidingWindow, FixedWindow, LeakyBucket}[alg%5],
			Limit: int64(limit%1000) + 1, Window: time.Duration(windowMs%5000+1) * time.Millisecond, Burst: int64(burst % 1000)}
		p, err := r.params()
		if err != nil {
			t.Fatal(err)
		}
		var s state
		now := int64(1_700_000_000_000_000)
		for i := 0; i+1 < len(ops); i += 2 {
			now += int64(ops[i]) * p.window / 64 // up to four windows between steps
			arg := int64(ops[i+1])
			switch {
			case arg >= 250: // a true-up charge beyond the limit
				s.adjust(&p, (arg-249)*p.limit, now)
			case arg >= 200: // a refund
				s.adjust(&p, -(arg - 199), now)
			default:
				n := arg%min(p.limit, p.burst) + 1
				before := s
				o := s.allow(&p, n, now)
				if o.ok {
					continue
				}
				if o.retry <= 0 {
					t.Fatalf("%+v: rejected %d at %d with retry %d", r, n, now, o.retry)
				}
				late, early := before, before
				if !late.allow(&p, n, now+o.retry).ok {
					t.Fatalf("%+v state %+v: %d rejected at now+retry (%dµs)", r, before, n, o.retry)
				}
				if o.retry > 1 && early.allow(&p, n, now+o.retry-1).ok {
					t.Fatalf("%+v state %+v: %d admitted before now+retry (%dµs)", r, before, n, o.retry)
				}
			}
		}
	})
}
