package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var allAlgorithms = []Algorithm{TokenBucket, SlidingWindow, FixedWindow, LeakyBucket, Hybrid, SlidingLog}

// TestMemoryConcurrentExact: 64 goroutines hammering one key at one instant admit exactly Limit.
func TestMemoryConcurrentExact(t *testing.T) {
	for _, alg := range allAlgorithms {
		t.Run(string(alg), func(t *testing.T) {
			m := NewMemory(MemoryOptions{})
			r := Rule{Algorithm: alg, Limit: 1000, Window: time.Minute}
			admitted := hammer(t, 64, 3000, func(i int) (bool, error) {
				d, err := m.Allow(context.Background(), "hot", r, 1, t0)
				return d.Allowed, err
			})
			if admitted != r.Limit {
				t.Errorf("admitted %d, want exactly %d", admitted, r.Limit)
			}
		})
	}
}

// TestMemoryConcurrentMixed runs Allow, Adjust, Acquire and Sweep together on shared and
// distinct keys, for the race detector, then checks no slot leaked.
func TestMemoryConcurrentMixed(t *testing.T) {
	m := NewMemory(MemoryOptions{Shards: 4})
	ctx := context.Background()
	var wg sync.WaitGroup
	var holders, maxHolders atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := range 500 {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				alg := allAlgorithms[(g+i)%len(allAlgorithms)]
				r := Rule{Algorithm: alg, Limit: 50, Window: time.Second}
				key := fmt.Sprintf("k%d", i%7)
				if _, err := m.Allow(ctx, key, r, 1, now); err != nil {
					t.Error(err)
					return
				}
				if err := m.Adjust(ctx, key, r, int64(i%3-1), now); err != nil {
					t.Error(err)
					return
				}
				if release, ok, _ := m.Acquire(ctx, "conc", 3, now); ok {
					h := holders.Add(1)
					for old := maxHolders.Load(); h > old && !maxHolders.CompareAndSwap(old, h); old = maxHolders.Load() {
					}
					holders.Add(-1)
					release()
					release()
				}
				if i%100 == 0 {
					m.Sweep(now)
				}
			}
		})
	}
	wg.Wait()
	if got := maxHolders.Load(); got > 3 {
		t.Errorf("%d concurrent holders of a 3-slot key", got)
	}
	for _, ok := range []bool{true, true, true, false} {
		release, got, err := m.Acquire(ctx, "conc", 3, t0)
		if err != nil || got != ok {
			t.Fatalf("Acquire after the run = %v, %v; want %v (a slot leaked)", got, err, ok)
		}
		_ = release
	}
}

func TestMemoryEviction(t *testing.T) {
	ctx := context.Background()
	for _, alg := range allAlgorithms {
		t.Run(string(alg), func(t *testing.T) {
			m := NewMemory(MemoryOptions{})
			r := Rule{Algorithm: alg, Limit: 10, Window: time.Second}
			for i := range 100 {
				mustAllow(t, m, fmt.Sprint("k", i), r, 10, t0, true)
			}
			if err := m.Adjust(ctx, "debtor", r, 10_000, t0); err != nil {
				t.Fatal(err)
			}
			if n := m.Sweep(t0.Add(2 * time.Second)); n != 0 { // touched within two windows
				t.Errorf("Sweep at +2s dropped %d states, want 0", n)
			}
			// after three windows every window state is empty and every bucket is full,
			// except the debtor's: 10 000 units of debt drain at 10 per second.
			// A window (and a log) forgets what is older than the window, debt included.
			windowed := alg == SlidingWindow || alg == FixedWindow || alg == SlidingLog
			if n := m.Sweep(t0.Add(3*time.Second + time.Microsecond)); windowed {
				if n != 101 {
					t.Errorf("Sweep at +3s dropped %d states, want 101", n)
				}
			} else if n != 100 {
				t.Errorf("Sweep at +3s dropped %d states, want 100 (the debtor stays)", n)
			}
			// a dropped state was indistinguishable from a fresh one
			if d := mustAllow(t, m, "k0", r, 0, t0.Add(4*time.Second), true); d.Remaining != 10 || d.Reset != 0 {
				t.Errorf("after eviction: %+v, want a fresh state", d)
			}
			// the debtor was kept where its debt outlasts three windows (the buckets)
			mustAllow(t, m, "debtor", r, 0, t0.Add(4*time.Second), windowed)
		})
	}
}

// TestMemoryHashCollision: keys whose 64-bit hashes collide share a list, stay apart, and
// a sweep unlinks idle states from anywhere in the list.
func TestMemoryHashCollision(t *testing.T) {
	sh := &NewMemory(MemoryOptions{Shards: 1}).shards[0]
	const h = 42
	r := Rule{Algorithm: FixedWindow, Limit: 3, Window: time.Second}
	now := t0.UnixMicro()
	get := func(key string) *node {
		t.Helper()
		nd := sh.findRule(h, key, &r)
		if nd == nil {
			var err error
			if nd, err = sh.get(h, key, &r, now, true); err != nil {
				t.Fatal(err)
			}
		}
		return nd
	}
	p := mustParams(t, r)
	for i, key := range []string{"a", "b", "c"} {
		for range i + 1 {
			if o := get(key).st.allow(p, 1, now, 0); !o.ok {
				t.Fatalf("%s rejected", key)
			}
		}
	}
	for i, key := range []string{"a", "b", "c"} {
		if o := get(key).st.allow(p, 0, now, 0); o.remaining != int64(2-i) {
			t.Errorf("%s: remaining %d, want %d", key, o.remaining, 2-i)
		}
	}
	later := now + 2*time.Second.Microseconds()
	get("b").st.allow(p, 1, later, 0) // b stays; a and c (the list's tail and head) go
	if n := sh.sweep(later + time.Second.Microseconds()); n != 2 || sh.count != 1 {
		t.Fatalf("sweep dropped %d, kept %d; want 2 and 1", n, sh.count)
	}
	if sh.findRule(h, "a", &r) != nil || sh.findRule(h, "c", &r) != nil || sh.findRule(h, "b", &r) == nil {
		t.Error("the sweep unlinked the wrong states")
	}
	sh.sweep(later + 3*time.Second.Microseconds())
	if len(sh.states) != 0 || sh.count != 0 {
		t.Errorf("an empty list stayed in the map: %d entries, count %d", len(sh.states), sh.count)
	}
}

// TestMemoryLazyEviction: without Sweep, a shard sweeps itself as it grows, so keys that
// come and go do not accumulate.
func TestMemoryLazyEviction(t *testing.T) {
	m := NewMemory(MemoryOptions{Shards: 1})
	r := Rule{Algorithm: Hybrid, Limit: 10, Window: time.Second}
	for wave := range 20 {
		now := t0.Add(time.Duration(wave) * 10 * time.Second)
		for i := range 1000 {
			mustAllow(t, m, fmt.Sprintf("w%d-%d", wave, i), r, 1, now, true)
		}
	}
	if n := m.len(); n > 3000 {
		t.Errorf("%d states held after 20 waves of 1000 short-lived keys, want <= 3000", n)
	}
}

// TestMemoryAllowNoAllocs: a decision on an existing key allocates nothing.
func TestMemoryAllowNoAllocs(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{})
	for _, alg := range allAlgorithms {
		r := Rule{Algorithm: alg, Limit: 1_000_000, Window: time.Second}
		if alg == SlidingLog {
			r.Limit = MaxLogLimit // one entry per admission
		}
		key := "api-key-0123456789abcdef"
		mustAllow(t, m, key, r, 1, t0, true)
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			i++
			now := t0.Add(time.Duration(i) * time.Microsecond)
			if _, err := m.Allow(ctx, key, r, 1, now); err != nil {
				t.Fatal(err)
			}
			if err := m.Adjust(ctx, key, r, -1, now); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocs per Allow+Adjust on an existing key, want 0", alg, allocs)
		}
	}
}

// TestMemoryBytesPerKey: each tracked key costs at most 256 bytes of heap, key included.
func TestMemoryBytesPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 100k keys")
	}
	perKey := bytesPerKey(t, 100_000)
	t.Logf("%.0f bytes per tracked key", perKey)
	if perKey > 256 {
		t.Errorf("%.0f bytes per tracked key, want <= 256", perKey)
	}
}

// bytesPerKey measures the heap growth of a Memory tracking n Hybrid keys (the keys'
// own strings included), after garbage collection.
func bytesPerKey(tb testing.TB, n int) float64 {
	r := Rule{Algorithm: Hybrid, Limit: 30, Window: time.Minute, Burst: 10}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := NewMemory(MemoryOptions{})
	for i := range n {
		if _, err := m.Allow(context.Background(), fmt.Sprintf("client-%07d", i), r, 1, t0); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if m.len() != n {
		tb.Fatalf("%d states, want %d", m.len(), n)
	}
	runtime.KeepAlive(m)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// hammer runs attempts calls of try from g goroutines and returns how many were admitted.
func hammer(t *testing.T, g, attempts int, try func(i int) (bool, error)) int64 {
	t.Helper()
	var admitted, next atomic.Int64
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(attempts) {
					return
				}
				ok, err := try(int(i))
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return admitted.Load()
}

// TestMemorySlidingLogBounded: a SlidingLog holds at most Limit entries however long it is
// driven (the ring's capacity is the next power of two), and an idle log is dropped.
func TestMemorySlidingLogBounded(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{})
	r := Rule{Algorithm: SlidingLog, Limit: 100, Window: time.Second}
	now := t0
	for i := range 20_000 {
		now = now.Add(time.Duration(i%7) * time.Millisecond)
		if _, err := m.Allow(ctx, "k", r, 1+int64(i%3), now); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if err := m.Adjust(ctx, "k", r, 50, now); err != nil { // charges stop at the limit
				t.Fatal(err)
			}
		}
	}
	sh, h := m.shard("k")
	nd := sh.findRule(h, "k", &r)
	if nd == nil || nd.log == nil {
		t.Fatal("no log")
	}
	if l := nd.log; l.size > 100 || len(l.ring) > 128 || l.used > 100 {
		t.Errorf("log holds %d entries (%d units) in a ring of %d, want at most 100 in 128", l.size, l.used, len(l.ring))
	}
	if n := m.Sweep(now.Add(2 * time.Second)); n != 0 {
		t.Errorf("Sweep within two windows dropped %d", n)
	}
	if n := m.Sweep(now.Add(3*time.Second + time.Microsecond)); n != 1 {
		t.Errorf("Sweep after three windows dropped %d, want 1", n)
	}
}
