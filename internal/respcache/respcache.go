// Package respcache stores whole completion replies by key, for the gateway to serve while no
// engine can answer: in memory, bounded by bytes with least-recently-used eviction, or in
// Redis with a time to live.
package respcache

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// Store holds replies by key. Get returns nil and no error on a miss.
type Store interface {
	Get(ctx context.Context, key string, now time.Time) ([]byte, error)
	Put(ctx context.Context, key string, val []byte, ttl time.Duration, now time.Time) error
}

// entryOverhead is the bookkeeping an entry costs besides its key and value, counted against
// the memory bound so that many tiny entries cannot exceed it.
const entryOverhead = 96

// Memory is a Store in process memory: at most maxBytes (keys, values and overhead), the
// least recently used entries evicted first, each entry gone after its ttl. Safe for
// concurrent use.
type Memory struct {
	mu    sync.Mutex
	max   int64
	bytes int64
	ll    *list.List // front: most recently used
	items map[string]*list.Element
}

type entry struct {
	key     string
	val     []byte
	expires time.Time
}

func (e *entry) size() int64 { return int64(len(e.key)+len(e.val)) + entryOverhead }

// NewMemory returns an empty Memory bounded by maxBytes.
func NewMemory(maxBytes int64) *Memory {
	return &Memory{max: maxBytes, ll: list.New(), items: map[string]*list.Element{}}
}

// Get returns the value of key, nil when absent or expired at now.
func (m *Memory) Get(_ context.Context, key string, now time.Time) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[key]
	if !ok {
		return nil, nil
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		m.remove(el)
		return nil, nil
	}
	m.ll.MoveToFront(el)
	return e.val, nil
}

// ErrTooLarge is a value larger than the whole bound of the store.
var ErrTooLarge = errors.New("respcache: entry larger than the cache")

// Put stores val under key until now+ttl, evicting the least recently used entries to stay
// within the bound. The store keeps val: the caller must not change it afterwards.
func (m *Memory) Put(_ context.Context, key string, val []byte, ttl time.Duration, now time.Time) error {
	e := &entry{key: key, val: val, expires: now.Add(ttl)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.size() > m.max {
		return ErrTooLarge
	}
	if el, ok := m.items[key]; ok {
		m.remove(el)
	}
	m.items[key] = m.ll.PushFront(e)
	m.bytes += e.size()
	m.evict()
	return nil
}

// SetMax changes the bound, evicting what no longer fits.
func (m *Memory) SetMax(maxBytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.max = maxBytes
	m.evict()
}

// Bytes is the size of the entries held, overhead included.
func (m *Memory) Bytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytes
}

// Len is the number of entries held, expired ones not yet dropped included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ll.Len()
}

func (m *Memory) evict() {
	for m.bytes > m.max {
		m.remove(m.ll.Back())
	}
}

func (m *Memory) remove(el *list.Element) {
	e := m.ll.Remove(el).(*entry)
	delete(m.items, e.key)
	m.bytes -= e.size()
}

// Redis is a Store in Redis: one string key per entry (Prefix + key) with a time to live in
// milliseconds, on the server's clock. Redis's own maxmemory policy bounds the total.
type Redis struct {
	// Client returns the connection to use, nil while there is none (every call then fails).
	Client func() rueidis.Client
	// Prefix is put before every key. Default "qwen:cache:".
	Prefix string
}

// ErrNotConnected is a call while the Redis client is not connected yet.
var ErrNotConnected = errors.New("respcache: redis not connected")

func (r *Redis) prefix() string {
	if r.Prefix == "" {
		return "qwen:cache:"
	}
	return r.Prefix
}

// Get returns the value of key, nil when absent.
func (r *Redis) Get(ctx context.Context, key string, _ time.Time) ([]byte, error) {
	c := r.Client()
	if c == nil {
		return nil, ErrNotConnected
	}
	b, err := c.Do(ctx, c.B().Get().Key(r.prefix()+key).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	return b, err
}

// Put stores val under key for ttl (at least 1 ms).
func (r *Redis) Put(ctx context.Context, key string, val []byte, ttl time.Duration, _ time.Time) error {
	c := r.Client()
	if c == nil {
		return ErrNotConnected
	}
	ms := max(ttl.Milliseconds(), 1)
	return c.Do(ctx, c.B().Set().Key(r.prefix()+key).Value(rueidis.BinaryString(val)).PxMilliseconds(ms).Build()).Error()
}
