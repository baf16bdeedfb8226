package ratelimit

import "math/bits"

// The algorithms as pure functions on a state, in integers: time in ticks since the Unix epoch
// (µs, or seconds for windows longer than a minute; see params.tick), window counts in units,
// bucket levels in units×window-ticks (so a refill of limit per window is exactly `limit` per
// tick). SlidingLog keeps a log instead (log.go). lua/decide.lua mirrors this file (same names, same arithmetic,
// written out inline for Redis's CPU); the conformance suite runs the same step tables against
// both, and TestBackendsAgree random sequences.

// state is the whole per-(key, rule) state of every algorithm; Hybrid uses all fields.
type state struct {
	start int64 // window algorithms: start of the current aligned window (ticks)
	cur   int64 // units counted in the current window
	prev  int64 // units counted in the previous window (SlidingWindow, Hybrid)
	level int64 // bucket algorithms: used capacity in units×ticks; 0 means a full bucket
	last  int64 // bucket algorithms: the instant level was computed at (ticks)
}

// outcome is a decision in ticks and units.
type outcome struct {
	ok                            bool
	remaining, retry, reset, wait int64
}

// roll moves the window state to the aligned window holding now and returns the elapsed
// time in it. Time never runs backwards for a key: an earlier now counts as the stored
// window's start.
func (s *state) roll(p *params, now int64) (elapsed int64) {
	if now < s.start {
		now = s.start
	}
	if el := now - s.start; el < p.window { // still the stored window (start is aligned)
		return el
	}
	start := now - floorMod(now, p.window)
	switch {
	case start == s.start:
	case p.alg != algFixed && start-p.window == s.start:
		s.prev, s.cur = s.cur, 0
	default:
		s.prev, s.cur = 0, 0
	}
	s.start = start
	return now - start
}

// drain empties the bucket by limit per tick since the last call.
func (s *state) drain(p *params, now int64) {
	if now <= s.last {
		return
	}
	if s.level > 0 {
		if el := now - s.last; covers(el, p.limit, s.level) {
			s.level = 0
		} else {
			s.level -= el * p.limit
		}
	}
	s.last = now
}

// windowUsed is the window's weighted count in units×ticks.
func (s *state) windowUsed(p *params, elapsed int64) int64 {
	used := s.cur * p.window
	if p.alg != algFixed {
		used += s.prev * (p.window - elapsed)
	}
	return used
}

// windowRetry is the wait until n units fit the window, given they do not fit now and n <= limit.
func (s *state) windowRetry(p *params, n, elapsed int64) int64 {
	w := p.window
	if p.alg == algFixed {
		return w - elapsed
	}
	if s.prev > 0 { // the previous window's weight falls by prev per tick
		deficit := s.windowUsed(p, elapsed) + (n-p.limit)*w
		if x := ceilDiv(deficit, s.prev); elapsed+x <= w {
			return x
		}
	}
	// In the next window, cur becomes the previous window and falls by cur per tick.
	if d := (s.cur + n - p.limit) * w; d > 0 && s.cur > 0 {
		return w - elapsed + ceilDiv(d, s.cur)
	}
	return w - elapsed
}

// windowStatus returns the units that still fit and the time until the window state is empty.
func (s *state) windowStatus(p *params, elapsed int64) (remaining, reset int64) {
	return s.windowStatusUsed(p, elapsed, s.windowUsed(p, elapsed))
}

// windowStatusUsed is windowStatus given windowUsed.
func (s *state) windowStatusUsed(p *params, elapsed, used int64) (remaining, reset int64) {
	if free := p.limit*p.window - used; free > 0 {
		remaining = free / p.window
	}
	switch {
	case s.cur > 0 && p.alg != algFixed:
		reset = 2*p.window - elapsed
	case s.cur > 0 || s.prev > 0:
		reset = p.window - elapsed
	}
	return remaining, reset
}

// bucketStatus returns the units that still fit and the time until the bucket is full.
func (s *state) bucketStatus(p *params) (remaining, reset int64) {
	if free := p.burst*p.window - s.level; free > 0 {
		remaining = free / p.window
	}
	return remaining, ceilDiv(s.level, p.limit)
}

// allow decides n units at now and consumes them when they fit every part of the rule. With
// maxWait > 0 (LeakyBucket) admitted units queue: they wait until the units already in the
// bucket have drained, and are rejected when that is longer than maxWait.
func (s *state) allow(p *params, n, now, maxWait int64) outcome {
	var (
		o                  outcome
		elapsed, used      int64 // window: the time into it, its weighted count in units×ticks
		never              bool
		retryWin, retryBkt int64
		window, bucket     = p.hasWindow, p.hasBucket
	)
	o.ok = true
	if window {
		elapsed = s.roll(p, now)
		used = s.windowUsed(p, elapsed)
		switch {
		case n > p.limit:
			o.ok, never = false, true
		case used+n*p.window > p.limit*p.window:
			o.ok = false
			retryWin = s.windowRetry(p, n, elapsed)
		}
	}
	if bucket {
		s.drain(p, now)
		switch {
		case n > p.burst:
			o.ok, never = false, true
		case s.level+n*p.window > p.burst*p.window:
			o.ok = false
			retryBkt = ceilDiv(s.level+n*p.window-p.burst*p.window, p.limit)
		}
		if maxWait > 0 && !never {
			// A queue: the units ahead drain in ceil(level/limit); past maxWait the request
			// is rejected until they have drained to maxWait's worth.
			if o.wait = ceilDiv(s.level, p.limit); o.wait > maxWait {
				o.ok = false
				retryBkt = max(retryBkt, ceilDiv(s.level-maxWait*p.limit, p.limit))
			}
		}
	}
	if o.ok {
		if window {
			s.cur += n
			used += n * p.window
		}
		if bucket {
			s.level += n * p.window
		}
	}
	// status: the smaller remaining and the later reset of the rule's parts
	switch {
	case window && bucket:
		rw, tw := s.windowStatusUsed(p, elapsed, used)
		rb, tb := s.bucketStatus(p)
		o.remaining, o.reset = min(rw, rb), max(tw, tb)
	case window:
		o.remaining, o.reset = s.windowStatusUsed(p, elapsed, used)
	default:
		o.remaining, o.reset = s.bucketStatus(p)
	}
	if !o.ok {
		o.wait = 0
		o.retry = max(retryWin, retryBkt)
		if never {
			o.retry = max(o.reset, p.window)
		}
	}
	return o
}

// status combines the parts of the rule: the smaller remaining, the later reset.
func (s *state) status(p *params, elapsed int64) (remaining, reset int64) {
	switch p.alg {
	case algSliding, algFixed:
		return s.windowStatus(p, elapsed)
	case algToken, algLeaky:
		return s.bucketStatus(p)
	}
	rw, tw := s.windowStatus(p, elapsed)
	rb, tb := s.bucketStatus(p)
	return min(rw, rb), max(tw, tb)
}

// adjust charges (delta > 0) or refunds (delta < 0) units at now. Charges saturate at
// maxScaled; refunds stop at an empty state.
func (s *state) adjust(p *params, delta, now int64) {
	if p.hasWindow {
		s.roll(p, now)
		if delta > 0 {
			s.cur = min(s.cur+min(delta, maxScaled), maxScaled/p.window)
		} else if s.cur += delta; s.cur < 0 {
			if p.alg != algFixed {
				s.prev = max(s.prev+s.cur, 0)
			}
			s.cur = 0
		}
	}
	if p.hasBucket {
		s.drain(p, now)
		if delta > 0 {
			s.level = min(s.level+mulSat(delta, p.window), maxScaled)
		} else {
			s.level = max(s.level-mulSat(-delta, p.window), 0)
		}
	}
}

// idle reports whether s is indistinguishable from a fresh state at now and was last
// touched more than two windows ago, so it can be dropped.
func (s *state) idle(p *params, now int64) bool {
	w := p.window
	if p.hasWindow && now-s.start < 3*w { // touched at or after start, empty after start+2w
		return false
	}
	if p.hasBucket {
		el := now - s.last
		if el <= 2*w || !covers(el, p.limit, s.level) {
			return false
		}
	}
	return true
}

// covers reports whether el ticks at limit per tick drain level (el*limit >= level), without overflow.
func covers(el, limit, level int64) bool {
	hi, lo := bits.Mul64(uint64(el), uint64(limit))
	return hi != 0 || lo >= uint64(level)
}

// floorMod is a mod b in [0, b) for b > 0, like Lua's %.
func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// ceilDiv is ⌈a/b⌉ for a >= 0, b > 0.
func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a-1)/b + 1
}

// mulSat is a×b for a, b >= 0, saturated at maxScaled.
func mulSat(a, b int64) int64 {
	if tooBig(a, b) {
		return maxScaled
	}
	return a * b
}
