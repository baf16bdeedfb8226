package schedule

import "time"

// wallTime returns the first instant of the day y-m-d in loc at which the wall clock reads
// hh:mm or later (see the package comment for the daylight-saving cases). time.Date leaves
// the choice in gaps and overlaps unspecified, so it is only used as a first guess here.
func wallTime(loc *time.Location, y int, m time.Month, d, hh, mm int) time.Time {
	want := time.Date(y, m, d, hh, mm, 0, 0, time.UTC) // the wall reading, as a comparable value
	guess := time.Date(y, m, d, hh, mm, 0, 0, loc)

	// Every instant that reads `want` is want minus one of the offsets in use around it;
	// the earliest of those is the first occurrence (fall back picks the summer offset).
	var best time.Time
	for _, probe := range []time.Time{guess.Add(-26 * time.Hour), guess, guess.Add(26 * time.Hour)} {
		_, off := probe.Zone()
		t := want.Add(-time.Duration(off) * time.Second).In(loc)
		if wall(t).Equal(want) && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	if !best.IsZero() {
		return best
	}
	// No instant reads `want`: the clock jumps over it. The first instant after the jump
	// is the transition, which bounds the zone period the guess fell into.
	start, end := guess.ZoneBounds()
	if wall(guess).After(want) {
		return start
	}
	return end
}

// wall is t's wall-clock reading in its own location, re-expressed in UTC for comparison.
func wall(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}
