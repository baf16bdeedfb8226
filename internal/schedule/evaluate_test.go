package schedule

import (
	"errors"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

func i32(v int32) *int32 { return &v }
func i64(v int64) *int64 { return &v }

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// instant reads "2006-01-02 15:04" as a wall time in loc (unambiguous times only), or an
// RFC 3339 instant when it ends in Z.
func instant(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	var ts time.Time
	var err error
	if s[len(s)-1] == 'Z' {
		ts, err = time.Parse(time.RFC3339, s)
	} else {
		ts, err = time.ParseInLocation("2006-01-02 15:04", s, loc)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

type evalCase struct {
	name   string
	now    string
	active string
	rpm    int32  // expected requestsPerMinute
	next   string // "" for never
}

func runEval(t *testing.T, loc *time.Location, scheds []v1alpha1.Schedule, base v1alpha1.LimitSet, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := instant(t, loc, tc.now)
			got, err := Evaluate(scheds, base, loc, now)
			if err != nil {
				t.Fatal(err)
			}
			if got.Active != tc.active {
				t.Errorf("Active = %q, want %q", got.Active, tc.active)
			}
			if tc.rpm != 0 && (got.Limits.RequestsPerMinute == nil || *got.Limits.RequestsPerMinute != tc.rpm) {
				t.Errorf("requestsPerMinute = %v, want %d", ptrString(got.Limits.RequestsPerMinute), tc.rpm)
			}
			if want := instant(t, loc, tc.next); !got.Next.Equal(want) {
				t.Errorf("Next = %v, want %v", got.Next.In(loc), want.In(loc))
			}
		})
	}
}

func ptrString[T any](p *T) any {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// The sample policy (config/samples/serving_v1alpha1_ratelimitpolicy.yaml): 100/min base,
// 50/min (burst 10) every day 09–18, 200/min (burst 40) every night 22–06, in Asia/Shanghai
// (UTC+8).
func sampleSchedules() ([]v1alpha1.Schedule, v1alpha1.LimitSet) {
	base := v1alpha1.LimitSet{RequestsPerMinute: i32(100), Burst: i32(20), TokensPerMinute: i64(60000), MaxConcurrentRequests: i32(8)}
	return []v1alpha1.Schedule{
		{Name: "daytime", Start: "09:00", End: "18:00",
			Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(50), Burst: i32(10)}},
		{Name: "night", Start: "22:00", End: "06:00",
			Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(200), Burst: i32(40)}},
	}, base
}

func TestEvaluateShanghaiDayNight(t *testing.T) {
	loc := mustLoad(t, "Asia/Shanghai")
	scheds, base := sampleSchedules()
	runEval(t, loc, scheds, base, []evalCase{
		{"thursday morning before daytime", "2026-11-26 08:59", "", 100, "2026-11-26 09:00"},
		{"daytime starts inclusive", "2026-11-26 09:00", "daytime", 50, "2026-11-26 18:00"},
		{"daytime, next is 10:00Z as in API.md", "2026-11-26 10:00", "daytime", 50, "2026-11-26T10:00:00Z"},
		{"daytime ends exclusive", "2026-11-26 18:00", "", 100, "2026-11-26 22:00"},
		{"night starts", "2026-11-26 22:00", "night", 200, "2026-11-27 06:00"},
		{"night after midnight", "2026-11-27 03:00", "night", 200, "2026-11-27 06:00"},
		{"friday gap before daytime", "2026-11-27 06:00", "", 100, "2026-11-27 09:00"},
		{"saturday has its daytime peak too", "2026-11-28 10:00", "daytime", 50, "2026-11-28 18:00"},
		{"sunday evening between peak and night", "2026-11-29 20:00", "", 100, "2026-11-29 22:00"},
		{"sunday night runs into monday", "2026-11-29 23:30", "night", 200, "2026-11-30 06:00"},
		{"monday daytime", "2026-11-30 17:59", "daytime", 50, "2026-11-30 18:00"},
	})

	got, err := Evaluate(scheds, base, loc, instant(t, loc, "2026-11-27 01:00"))
	if err != nil {
		t.Fatal(err)
	}
	want := v1alpha1.LimitSet{RequestsPerMinute: i32(200), Burst: i32(40), TokensPerMinute: i64(60000), MaxConcurrentRequests: i32(8)}
	if !limitsEqual(got.Limits, want) {
		t.Errorf("night limits = %s, want %s", fmtLimits(got.Limits), fmtLimits(want))
	}
}

// America/New_York: 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT
// falls back to 01:00 EST (06:00Z), so 01:00–02:00 is shown twice.
func TestEvaluateNewYorkSpringForward(t *testing.T) {
	loc := mustLoad(t, "America/New_York")
	t.Run("window starting in the gap starts when the clock lands", func(t *testing.T) {
		scheds := []v1alpha1.Schedule{{Name: "maint", Start: "02:30", End: "04:00", Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(5)}}}
		runEval(t, loc, scheds, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
			{"just before the jump", "2026-03-08T06:59:00Z", "", 30, "2026-03-08T07:00:00Z"}, // 01:59 EST
			{"at the jump", "2026-03-08T07:00:00Z", "maint", 5, "2026-03-08T08:00:00Z"},      // 03:00 EDT
			{"a normal day is 90 minutes", "2026-03-09T06:30:00Z", "maint", 5, "2026-03-09T08:00:00Z"},
		})
	})
	t.Run("window ending in the gap ends when the clock lands", func(t *testing.T) {
		scheds := []v1alpha1.Schedule{{Name: "late", Start: "01:00", End: "02:30", Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(5)}}}
		runEval(t, loc, scheds, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
			{"inside", "2026-03-08T06:30:00Z", "late", 5, "2026-03-08T07:00:00Z"},
			{"after", "2026-03-08T07:00:00Z", "", 30, "2026-03-09T05:00:00Z"}, // 01:00 EDT next day
		})
	})
	t.Run("night across the jump is an hour shorter", func(t *testing.T) {
		scheds := []v1alpha1.Schedule{{Name: "night", Start: "22:00", End: "06:00", Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(200)}}}
		runEval(t, loc, scheds, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
			{"saturday 22:00 EST", "2026-03-08T03:00:00Z", "night", 200, "2026-03-08T10:00:00Z"}, // ends 06:00 EDT
			{"inside the gap hour", "2026-03-08T07:00:00Z", "night", 200, "2026-03-08T10:00:00Z"},
			{"sunday day", "2026-03-08T10:00:00Z", "", 30, "2026-03-09T02:00:00Z"}, // 22:00 EDT
		})
	})
	t.Run("window wholly inside the gap does not happen that day", func(t *testing.T) {
		scheds := []v1alpha1.Schedule{{Name: "ghost", Start: "02:10", End: "02:40", Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(5)}}}
		runEval(t, loc, scheds, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
			{"saturday after it", "2026-03-07T08:00:00Z", "", 30, "2026-03-09T06:10:00Z"}, // skips Sunday
		})
	})
}

func TestEvaluateNewYorkFallBack(t *testing.T) {
	loc := mustLoad(t, "America/New_York")
	t.Run("window starting at a repeated time starts at its first occurrence", func(t *testing.T) {
		scheds := []v1alpha1.Schedule{{Name: "early", Start: "01:30", End: "03:00", Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(5)}}}
		runEval(t, loc, scheds, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
			{"before first 01:30", "2026-11-01T05:29:00Z", "", 30, "2026-11-01T05:30:00Z"},     // 01:29 EDT
			{"first 01:45 (EDT)", "2026-11-01T05:45:00Z", "early", 5, "2026-11-01T08:00:00Z"},  // ends 03:00 EST
			{"second 01:15 (EST)", "2026-11-01T06:15:00Z", "early", 5, "2026-11-01T08:00:00Z"}, // still inside
			{"normal day", "2026-11-02T06:30:00Z", "early", 5, "2026-11-02T08:00:00Z"},         // 01:30 EST
		})
	})
	t.Run("window ending at a repeated time ends at its first occurrence", func(t *testing.T) {
		scheds := []v1alpha1.Schedule{{Name: "evening", Start: "22:00", End: "01:30", Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(5)}}}
		runEval(t, loc, scheds, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
			{"saturday night", "2026-11-01T04:00:00Z", "evening", 5, "2026-11-01T05:30:00Z"}, // 00:00 EDT
			{"second 01:15 is outside", "2026-11-01T06:15:00Z", "", 30, "2026-11-02T03:00:00Z"},
		})
	})
	t.Run("night across the fall back is an hour longer", func(t *testing.T) {
		scheds := []v1alpha1.Schedule{{Name: "night", Start: "22:00", End: "06:00", Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(200)}}}
		runEval(t, loc, scheds, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
			{"saturday 22:00 EDT", "2026-11-01T02:00:00Z", "night", 200, "2026-11-01T11:00:00Z"},
			{"sunday 05:59 EST", "2026-11-01T10:59:00Z", "night", 200, "2026-11-01T11:00:00Z"},
			{"sunday day", "2026-11-01T11:00:00Z", "", 30, "2026-11-02T03:00:00Z"},
		})
	})
}

// A window belongs to the day it starts on: Friday 22:00 to Saturday 06:00 only.
func TestEvaluateWindowIntoNextWeekday(t *testing.T) {
	loc := time.UTC
	scheds := []v1alpha1.Schedule{{Name: "friday-night", Days: []v1alpha1.Weekday{"Fri"}, Start: "22:00", End: "06:00",
		Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(300)}}}
	runEval(t, loc, scheds, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
		{"thursday night is not friday", "2026-11-26 23:00", "", 30, "2026-11-27 22:00"},
		{"friday early morning belongs to thursday", "2026-11-27 03:00", "", 30, "2026-11-27 22:00"},
		{"friday night", "2026-11-27 22:00", "friday-night", 300, "2026-11-28 06:00"},
		{"saturday early morning", "2026-11-28 05:59", "friday-night", 300, "2026-11-28 06:00"},
		{"saturday after", "2026-11-28 06:00", "", 30, "2026-12-04 22:00"},
		{"saturday night is not friday", "2026-11-28 23:00", "", 30, "2026-12-04 22:00"},
	})
}

func TestEvaluateFirstMatchWins(t *testing.T) {
	loc := time.UTC
	day := v1alpha1.Schedule{Name: "day", Start: "09:00", End: "18:00", Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(50)}}
	lunch := v1alpha1.Schedule{Name: "lunch", Start: "12:00", End: "14:00", Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(10)}}
	t.Run("outer first hides inner", func(t *testing.T) {
		runEval(t, loc, []v1alpha1.Schedule{day, lunch}, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
			{"lunch time", "2026-11-26 13:00", "day", 50, "2026-11-26 18:00"},
			{"morning", "2026-11-26 10:00", "day", 50, "2026-11-26 18:00"},
		})
	})
	t.Run("inner first punches a hole", func(t *testing.T) {
		runEval(t, loc, []v1alpha1.Schedule{lunch, day}, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
			{"morning", "2026-11-26 10:00", "day", 50, "2026-11-26 12:00"},
			{"lunch time", "2026-11-26 13:00", "lunch", 10, "2026-11-26 14:00"},
			{"afternoon", "2026-11-26 14:00", "day", 50, "2026-11-26 18:00"},
		})
	})
	t.Run("no schedules never change", func(t *testing.T) {
		runEval(t, loc, nil, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
			{"any time", "2026-11-26 13:00", "", 30, ""},
		})
	})
	t.Run("back-to-back windows hand over", func(t *testing.T) {
		a := v1alpha1.Schedule{Name: "a", Start: "06:00", End: "18:00", Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(1)}}
		b := v1alpha1.Schedule{Name: "b", Start: "18:00", End: "06:00", Limits: v1alpha1.LimitSet{RequestsPerMinute: i32(2)}}
		runEval(t, loc, []v1alpha1.Schedule{a, b}, v1alpha1.LimitSet{RequestsPerMinute: i32(30)}, []evalCase{
			{"a", "2026-11-26 17:00", "a", 1, "2026-11-26 18:00"},
			{"b", "2026-11-26 18:00", "b", 2, "2026-11-27 06:00"},
		})
	})
}

func TestEvaluateInvalid(t *testing.T) {
	for _, s := range []v1alpha1.Schedule{
		{Name: "bad-day", Days: []v1alpha1.Weekday{"Funday"}, Start: "09:00", End: "10:00"},
		{Name: "bad-start", Start: "24:00", End: "10:00"},
		{Name: "bad-end", Start: "09:00", End: "9:00"},
		{Name: "empty", Start: "09:00", End: "09:00"},
	} {
		_, err := Evaluate([]v1alpha1.Schedule{s}, v1alpha1.LimitSet{}, time.UTC, time.Now())
		if !errors.Is(err, ErrInvalidSchedule) {
			t.Errorf("%s: err = %v, want ErrInvalidSchedule", s.Name, err)
		}
	}
}

func TestWallTime(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	for _, tc := range []struct {
		name      string
		y         int
		m         time.Month
		d, hh, mm int
		want      string
	}{
		{"ordinary", 2026, time.March, 7, 2, 30, "2026-03-07T07:30:00Z"},
		{"skipped 02:30 becomes 03:00 EDT", 2026, time.March, 8, 2, 30, "2026-03-08T07:00:00Z"},
		{"skipped 02:00 becomes 03:00 EDT", 2026, time.March, 8, 2, 0, "2026-03-08T07:00:00Z"},
		{"03:00 EDT itself", 2026, time.March, 8, 3, 0, "2026-03-08T07:00:00Z"},
		{"repeated 01:30 is the EDT one", 2026, time.November, 1, 1, 30, "2026-11-01T05:30:00Z"},
		{"repeated 01:00 is the EDT one", 2026, time.November, 1, 1, 0, "2026-11-01T05:00:00Z"},
		{"02:00 after the fall back", 2026, time.November, 1, 2, 0, "2026-11-01T07:00:00Z"},
	} {
		got := wallTime(ny, tc.y, tc.m, tc.d, tc.hh, tc.mm)
		if want := instant(t, ny, tc.want); !got.Equal(want) {
			t.Errorf("%s: got %v (%v), want %v", tc.name, got, got.UTC(), want)
		}
	}
}
