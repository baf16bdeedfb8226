package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryOptions configures NewMemory.
type MemoryOptions struct {
	// Shards is the number of independently locked maps, rounded up to a power of two;
	// default 64.
	Shards int
}

// Memory is a Limiter that keeps state in this process: sharded maps, each behind a mutex.
// States that are back to fresh and untouched for more than two windows are dropped by
// Sweep, and lazily by a shard that has grown by half since it was last swept.
type Memory struct {
	seed   maphash.Seed
	mask   uint64
	shards []shard
}

type shard struct {
	mu     sync.Mutex
	states map[stateKey]*state
	slots  map[string]int64 // Acquire: slots taken per key
	added  int              // states created since the last sweep
	_      [128 - 32]byte   // keep shards on separate cache lines
}

// stateKey is comparable, so looking up an existing key does not allocate.
type stateKey struct {
	key string
	p   params
}

// lazySweepMin is the shard size below which no lazy sweep runs.
const lazySweepMin = 256

var _ Limiter = (*Memory)(nil)

// NewMemory returns an empty in-process Limiter.
func NewMemory(opts MemoryOptions) *Memory {
	n := 64
	if opts.Shards > 0 {
		n = 1
		for n < opts.Shards {
			n <<= 1
		}
	}
	m := &Memory{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]shard, n)}
	for i := range m.shards {
		m.shards[i].states = map[stateKey]*state{}
		m.shards[i].slots = map[string]int64{}
	}
	return m
}

func (m *Memory) shard(key string) *shard {
	return &m.shards[maphash.String(m.seed, key)&m.mask]
}

// Allow decides whether n units for key fit r at now, consuming them only if allowed.
func (m *Memory) Allow(_ context.Context, key string, r Rule, n int64, now time.Time) (Decision, error) {
	p, err := r.params()
	if err != nil {
		return Decision{}, err
	}
	if n < 0 {
		return Decision{}, errNegativeN
	}
	t := now.UnixMicro()
	sh := m.shard(key)
	sh.mu.Lock()
	st := sh.get(key, &p, t)
	o := st.allow(&p, n, t)
	sh.mu.Unlock()
	return o.decision(r.Limit), nil
}

// Adjust charges (delta>0) or refunds (delta<0) units for key under r at now.
func (m *Memory) Adjust(_ context.Context, key string, r Rule, delta int64, now time.Time) error {
	p, err := r.params()
	if err != nil {
		return err
	}
	t := now.UnixMicro()
	sh := m.shard(key)
	sh.mu.Lock()
	if st := sh.states[stateKey{key, p}]; st != nil {
		st.adjust(&p, delta, t)
	} else if delta > 0 {
		sh.get(key, &p, t).adjust(&p, delta, t)
	}
	sh.mu.Unlock()
	return nil
}

// get returns the state of (key, p), creating it; the caller holds sh.mu.
func (sh *shard) get(key string, p *params, now int64) *state {
	k := stateKey{key, *p}
	if st := sh.states[k]; st != nil {
		return st
	}
	if sh.added++; sh.added > len(sh.states)/2 && len(sh.states) >= lazySweepMin {
		sh.sweep(now)
	}
	st := new(state)
	sh.states[k] = st
	return st
}

// sweep drops idle states; the caller holds sh.mu.
func (sh *shard) sweep(now int64) int {
	dropped := 0
	for k, st := range sh.states {
		if st.idle(&k.p, now) {
			delete(sh.states, k)
			dropped++
		}
	}
	sh.added = 0
	return dropped
}

// Sweep drops every state that is back to fresh and untouched for more than two windows
// at now, and returns how many it dropped. Call it periodically to bound memory when keys
// come and go; dropping a state never changes a later decision.
func (m *Memory) Sweep(now time.Time) int {
	t := now.UnixMicro()
	dropped := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		dropped += sh.sweep(t)
		sh.mu.Unlock()
	}
	return dropped
}

// Acquire takes one of max concurrent slots for key; ok=false when all are taken. Slots
// held in memory do not expire: release must be called.
func (m *Memory) Acquire(_ context.Context, key string, max int64, _ time.Time) (release func(), ok bool, err error) {
	if max <= 0 {
		return nil, false, errNonPositive
	}
	sh := m.shard(key)
	sh.mu.Lock()
	taken := sh.slots[key]
	if taken >= max {
		sh.mu.Unlock()
		return nil, false, nil
	}
	sh.slots[key] = taken + 1
	sh.mu.Unlock()
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		sh.mu.Lock()
		if left := sh.slots[key] - 1; left > 0 {
			sh.slots[key] = left
		} else {
			delete(sh.slots, key)
		}
		sh.mu.Unlock()
	}, true, nil
}

// len returns the number of states held.
func (m *Memory) len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.states)
		sh.mu.Unlock()
	}
	return n
}
