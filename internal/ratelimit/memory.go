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

// A shard maps the hash of a key to the states of that key, one per rule (and, in the rare
// case of a 64-bit hash collision, of the other keys with that hash). The key is hashed once,
// for the shard and the map alike, and a state found under its key whose rule the caller's
// Rule spells is used without validating that Rule again.
type shard struct {
	mu     sync.Mutex
	states map[uint64]*node
	slots  map[string]int64 // Acquire: slots taken per key
	count  int              // nodes held
	added  int              // nodes created since the last sweep
	_      [128 - 40]byte   // keep shards on separate cache lines
}

// node is the state of one (key, rule); nodes with the same key hash form a list.
type node struct {
	st   state
	p    params
	log  *logState // SlidingLog's state instead of st
	key  string
	next *node
}

// newNode is a fresh state of rule p.
func newNode(p params) *node {
	nd := &node{p: p}
	if p.alg == algLog {
		nd.log = &logState{}
	}
	return nd
}

// decide runs the rule's algorithm at now (µs) with maxWait (ticks).
func (nd *node) decide(n, now, maxWait int64) outcome {
	t, off := nd.p.ticks(now)
	if nd.log != nil {
		return nd.log.allow(&nd.p, n, t).inMicros(&nd.p, off)
	}
	return nd.st.allow(&nd.p, n, t, maxWait).inMicros(&nd.p, off)
}

// charge runs Adjust at now (µs).
func (nd *node) charge(delta, now int64) {
	t, _ := nd.p.ticks(now)
	if nd.log != nil {
		nd.log.adjust(&nd.p, delta, t)
		return
	}
	nd.st.adjust(&nd.p, delta, t)
}

// idle reports whether the state can be dropped at now (µs).
func (nd *node) idle(now int64) bool {
	t, _ := nd.p.ticks(now)
	if nd.log != nil {
		return nd.log.idle(&nd.p, t)
	}
	return nd.st.idle(&nd.p, t)
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
		m.shards[i].states = map[uint64]*node{}
		m.shards[i].slots = map[string]int64{}
	}
	return m
}

func (m *Memory) shard(key string) (*shard, uint64) {
	h := maphash.String(m.seed, key)
	return &m.shards[h&m.mask], h
}

// Allow decides whether n units for key fit r at now, consuming them only if allowed.
func (m *Memory) Allow(_ context.Context, key string, r Rule, n int64, now time.Time) (Decision, error) {
	if n < 0 {
		if err := r.Validate(); err != nil {
			return Decision{}, err
		}
		return Decision{}, errNegativeN
	}
	t := now.UnixMicro()
	sh, h := m.shard(key)
	sh.mu.Lock()
	nd := sh.findRule(h, key, &r)
	if nd == nil {
		var err error
		if nd, err = sh.get(h, key, &r, t, true); err != nil {
			sh.mu.Unlock()
			return Decision{}, err
		}
	}
	var wait int64
	if r.MaxWait != 0 {
		var err error
		if wait, err = nd.p.waitTicks(&r); err != nil {
			sh.mu.Unlock()
			return Decision{}, err
		}
	}
	o := nd.decide(n, t, wait)
	sh.mu.Unlock()
	return o.decision(r.Limit), nil
}

// Adjust charges (delta>0) or refunds (delta<0) units for key under r at now.
func (m *Memory) Adjust(_ context.Context, key string, r Rule, delta int64, now time.Time) error {
	t := now.UnixMicro()
	sh, h := m.shard(key)
	sh.mu.Lock()
	nd := sh.findRule(h, key, &r)
	if nd == nil {
		var err error
		if nd, err = sh.get(h, key, &r, t, delta > 0); err != nil || nd == nil {
			sh.mu.Unlock()
			return err
		}
	}
	nd.charge(delta, t)
	sh.mu.Unlock()
	return nil
}

// findRule returns the node of (key, r), key hashed to h, or nil, without validating r (a
// node's rule is valid); nil can also mean r must be validated first (see get). The caller
// holds sh.mu. Skipping the validation is most of what makes a decision on an existing key
// as cheap as x/time/rate's.
func (sh *shard) findRule(h uint64, key string, r *Rule) *node {
	for nd := sh.states[h]; nd != nil; nd = nd.next {
		if nd.p.spelledBy(r) && nd.key == key {
			return nd
		}
	}
	return nil
}

// get validates r and returns the node of (key, r) under any spelling of r, creating it
// when create is set (else it may return nil); the caller holds sh.mu.
func (sh *shard) get(h uint64, key string, r *Rule, now int64, create bool) (*node, error) {
	p, err := r.params()
	if err != nil {
		return nil, err
	}
	for nd := sh.states[h]; nd != nil; nd = nd.next {
		if nd.p == p && nd.key == key {
			return nd, nil
		}
	}
	if !create {
		return nil, nil
	}
	if sh.added++; sh.added > sh.count/2 && sh.count >= lazySweepMin {
		sh.sweep(now)
	}
	nd := newNode(p)
	nd.key, nd.next = key, sh.states[h]
	sh.states[h] = nd
	sh.count++
	return nd, nil
}

// sweep drops idle states; the caller holds sh.mu.
func (sh *shard) sweep(now int64) int {
	dropped := 0
	for h, first := range sh.states {
		head, link := first, &first
		for nd := first; nd != nil; nd = nd.next {
			if nd.idle(now) {
				*link = nd.next
				dropped++
				continue
			}
			link = &nd.next
		}
		switch {
		case first == nil:
			delete(sh.states, h)
		case first != head:
			sh.states[h] = first
		}
	}
	sh.count -= dropped
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
	sh, _ := m.shard(key)
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
		n += sh.count
		sh.mu.Unlock()
	}
	return n
}
