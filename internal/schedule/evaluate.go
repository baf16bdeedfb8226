package schedule

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

// ErrInvalidSchedule is wrapped by Evaluate when a schedule cannot be read (a bad day name
// or clock time, or start equal to end); the schema refuses these, so seeing it means the
// object bypassed validation.
var ErrInvalidSchedule = errors.New("invalid schedule")

// Result is what the schedules decide at one instant.
type Result struct {
	// Active is the name of the schedule in force, or "" when only the base limits apply.
	Active string
	// Limits are the base limits with the active schedule's set fields merged on.
	Limits v1alpha1.LimitSet
	// Next is the first instant after now at which Active changes, or the zero time when it
	// never does (no schedules, or none that ever starts).
	Next time.Time
}

// horizonDays bounds the search for the next change: the schedules repeat weekly, so a
// change, if there is one, comes within seven days (plus one for wrapping windows and DST).
const horizonDays = 8

// Evaluate returns the schedule in force at now in loc (the first in list order whose window
// contains now), the limits it yields over base and the next instant that changes. Windows
// are half-open: a window 09:00–18:00 is active at 09:00 and inactive at 18:00. A nil loc
// means UTC.
func Evaluate(schedules []v1alpha1.Schedule, base v1alpha1.LimitSet, loc *time.Location, now time.Time) (Result, error) {
	if loc == nil {
		loc = time.UTC
	}
	rules := make([]rule, len(schedules))
	for i, s := range schedules {
		r, err := parseRule(s)
		if err != nil {
			return Result{}, err
		}
		rules[i] = r
	}
	windows := make([][]window, len(rules))
	for i, r := range rules {
		windows[i] = r.windows(loc, now, -1, horizonDays)
	}

	res := Result{Limits: Merge(base, v1alpha1.LimitSet{})}
	active := activeAt(windows, now)
	if active >= 0 {
		res.Active = schedules[active].Name
		res.Limits = Merge(base, schedules[active].Limits)
	}
	res.Next = nextChange(windows, now, active)
	return res, nil
}

// window is one occurrence of a schedule: [start, end).
type window struct{ start, end time.Time }

func (w window) contains(t time.Time) bool { return !t.Before(w.start) && t.Before(w.end) }

// activeAt returns the index of the first schedule with a window containing t, or -1.
func activeAt(windows [][]window, t time.Time) int {
	for i, ws := range windows {
		for _, w := range ws {
			if w.contains(t) {
				return i
			}
		}
	}
	return -1
}

// nextChange returns the first window boundary after now at which the active schedule is no
// longer `active`, or the zero time.
func nextChange(windows [][]window, now time.Time, active int) time.Time {
	var bounds []time.Time
	for _, ws := range windows {
		for _, w := range ws {
			for _, b := range []time.Time{w.start, w.end} {
				if b.After(now) {
					bounds = append(bounds, b)
				}
			}
		}
	}
	slices.SortFunc(bounds, func(a, b time.Time) int { return a.Compare(b) })
	for _, b := range bounds {
		if activeAt(windows, b) != active {
			return b
		}
	}
	return time.Time{}
}

// rule is a parsed Schedule.
type rule struct {
	days       [7]bool // by time.Weekday
	start, end clock
}

// clock is a wall-clock time of day.
type clock struct{ h, m int }

func (c clock) minutes() int { return c.h*60 + c.m }

var weekdays = map[v1alpha1.Weekday]time.Weekday{
	"Sun": time.Sunday, "Mon": time.Monday, "Tue": time.Tuesday, "Wed": time.Wednesday,
	"Thu": time.Thursday, "Fri": time.Friday, "Sat": time.Saturday,
}

func parseRule(s v1alpha1.Schedule) (rule, error) {
	var r rule
	if len(s.Days) == 0 {
		r.days = [7]bool{true, true, true, true, true, true, true}
	}
	for _, d := range s.Days {
		wd, ok := weekdays[d]
		if !ok {
			return rule{}, fmt.Errorf("%w %q: unknown day %q (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)", ErrInvalidSchedule, s.Name, d)
		}
		r.days[wd] = true
	}
	var err error
	if r.start, err = parseClock(s.Start); err != nil {
		return rule{}, fmt.Errorf("%w %q: start: %v", ErrInvalidSchedule, s.Name, err)
	}
	if r.end, err = parseClock(s.End); err != nil {
		return rule{}, fmt.Errorf("%w %q: end: %v", ErrInvalidSchedule, s.Name, err)
	}
	if r.start == r.end {
		return rule{}, fmt.Errorf("%w %q: start and end are both %s", ErrInvalidSchedule, s.Name, s.Start)
	}
	return r, nil
}

// parseClock reads "HH:MM", 00:00 to 23:59.
func parseClock(s string) (clock, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return clock{}, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return clock{t.Hour(), t.Minute()}, nil
}

// windows returns the rule's windows that start on the days from..to relative to now's date
// in loc, in order.
func (r rule) windows(loc *time.Location, now time.Time, from, to int) []window {
	y, m, d := now.In(loc).Date()
	wraps := r.end.minutes() < r.start.minutes()
	var out []window
	for k := from; k <= to; k++ {
		day := time.Date(y, m, d+k, 0, 0, 0, 0, time.UTC) // calendar arithmetic only
		if !r.days[day.Weekday()] {
			continue
		}
		endDay := day
		if wraps {
			endDay = day.AddDate(0, 0, 1)
		}
		w := window{
			start: wallTime(loc, day.Year(), day.Month(), day.Day(), r.start.h, r.start.m),
			end:   wallTime(loc, endDay.Year(), endDay.Month(), endDay.Day(), r.end.h, r.end.m),
		}
		if w.start.Before(w.end) { // both ends inside one spring-forward gap: no window that day
			out = append(out, w)
		}
	}
	return out
}
