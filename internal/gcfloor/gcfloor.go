// Package gcfloor keeps a process with a small heap from collecting garbage too often. Go
// collects when the heap has grown by GOGC % of what the last collection left live; a proxy
// whose live heap is a few MiB but which allocates tens of MiB a second (one request body, one
// response head per request) then collects many times a second, and the fixed cost of each
// collection becomes a large part of its CPU. After every collection gcfloor sets GOGC so that
// the heap may grow by at least a fixed headroom, and never by less than GOGC=100 allows: a
// small heap collects once per headroom of allocation, a large one exactly as Go does by default.
// The heap then peaks at max(live + headroom, 2 × live).
//
// It steps aside when the GOGC environment variable is set: the operator of the process
// decided.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// basePercent is Go's default GOGC, the least gcfloor ever sets.
const basePercent = 100

// minHeap is Go's smallest heap goal at GOGC=100 (4 MiB). Go scales it with GOGC (the goal
// is never below minHeap × GOGC / 100), so a live heap is never taken as smaller than this:
// before the first collection it reads 0, and GOGC = headroom / 0 would put the first
// collection off until the heap reached gigabytes.
const minHeap = 4 << 20

// Percent is the GOGC that lets a heap with live bytes live grow by at least headroom bytes
// before the next collection, and never by less than Go's default allows.
func Percent(live, headroom uint64) int {
	p := float64(headroom) * 100 / float64(max(live, minHeap))
	if p < basePercent {
		return basePercent
	}
	return int(p)
}

// Start sets GOGC after every collection from the live heap (Percent) until stop is called,
// and returns stop. It does nothing, and returns a stop that does nothing, when headroom is 0
// or the GOGC environment variable is set. onTune, when not nil, is called with each GOGC set
// (for tests).
func Start(headroom uint64, onTune func(percent int)) (stop func()) {
	if headroom == 0 || os.Getenv("GOGC") != "" {
		return func() {}
	}
	t := &tuner{headroom: headroom, onTune: onTune, sample: []metrics.Sample{{Name: liveMetric}}}
	t.tune()
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.stopped {
			t.stopped = true
			debug.SetGCPercent(basePercent)
		}
	}
}

// liveMetric is the heap the last collection marked live.
const liveMetric = "/gc/heap/live:bytes"

type tuner struct {
	headroom uint64
	onTune   func(int)

	mu      sync.Mutex // a tune and stop: no GOGC is set after stop put the default back
	sample  []metrics.Sample
	stopped bool
}

// sentinel is an object nothing refers to: each collection finds it unreachable and runs its
// finalizer, which tunes and re-arms it (a finalizer may make its object reachable again).
// It holds a pointer so that it is not a tiny allocation, whose finalizers may never run.
type sentinel struct{ t *tuner }

func (t *tuner) arm() { runtime.SetFinalizer(&sentinel{t: t}, finalize) }

// finalize runs on the finalizer goroutine after each collection.
func finalize(s *sentinel) {
	if s.t.tune() {
		runtime.SetFinalizer(s, finalize)
	}
}

// tune sets GOGC from the live heap, unless stopped; it reports whether it did.
func (t *tuner) tune() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := Percent(live, t.headroom)
	debug.SetGCPercent(p)
	if t.onTune != nil {
		t.onTune(p)
	}
	return true
}
