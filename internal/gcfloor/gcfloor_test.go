package gcfloor

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{4 * mib, 32 * mib, 800},   // a small heap grows by the headroom
		{32 * mib, 32 * mib, 100},  // where the headroom equals the heap, Go's default
		{512 * mib, 32 * mib, 100}, // a large heap collects as Go does by default
		{24 * mib, 32 * mib, 133},  // whole percents, rounded down
		{0, 32 * mib, 800},         // before the first collection: as if 4 MiB (Go's minimum)
		{1 * mib, 32 * mib, 800},   // below Go's minimum heap too: the goal stays 4 + 32 MiB
		{4 * mib, 0, 100},          // no headroom: the default
	} {
		if got := Percent(c.live, c.headroom); got != c.want {
			t.Errorf("Percent(live %d, headroom %d) = %d, want %d", c.live, c.headroom, got, c.want)
		}
	}
}

// TestStartTunesAfterEveryCollection: with a 64 MiB headroom on this test's small heap, GOGC
// is raised after each collection (every collection tunes again), and stop puts Go's default
// back.
func TestStartTunesAfterEveryCollection(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tuned := make(chan int, 16)
	stop := Start(64<<20, func(p int) {
		select {
		case tuned <- p:
		default:
		}
	})
	if p := <-tuned; p <= 100 { // Start tunes once at once
		t.Errorf("at start: GOGC %d, want more than 100", p)
	}
	checkGoal(t, "at start", 64<<20)
	for i := range 3 {
		runtime.GC()
		select {
		case p := <-tuned:
			if p <= 100 {
				t.Errorf("collection %d: GOGC %d, want more than 100 for a heap far below the headroom", i, p)
			}
			checkGoal(t, fmt.Sprintf("collection %d", i), 64<<20)
		case <-time.After(30 * time.Second):
			t.Fatalf("collection %d: not tuned", i)
		}
	}
	stop()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after stop GOGC is %d, want 100", p)
	}
	runtime.GC()
	runtime.GC()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("a collection after stop set GOGC %d", p)
	}
}

// checkGoal fails unless Go's heap goal is at most the live heap (at least Go's 4 MiB minimum)
// plus the headroom: the heap is let grow by the headroom, not more.
func checkGoal(t *testing.T, when string, headroom uint64) {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: liveMetric}}
	metrics.Read(s)
	goal, live := s[0].Value.Uint64(), s[1].Value.Uint64()
	if limit := max(live, minHeap) + headroom; goal > limit {
		t.Errorf("%s: heap goal %d MiB with %d MiB live, want at most %d MiB", when, goal>>20, live>>20, limit>>20)
	}
}

// TestStartStepsAsideForGOGC: a GOGC the process was started with is left alone.
func TestStartStepsAsideForGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	called := false
	stop := Start(64<<20, func(int) { called = true })
	defer stop()
	runtime.GC()
	runtime.GC()
	if p := debug.SetGCPercent(100); p != 100 || called {
		t.Errorf("with GOGC set: GOGC %d, tuned %v; want 100, untouched", p, called)
	}
}
