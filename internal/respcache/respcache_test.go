package respcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// backends are the stores the behaviour suite runs on: memory and a real redis-server.
func backends(t *testing.T) map[string]Store {
	srv := redisserver.Start(t)
	c := srv.Client()
	return map[string]Store{
		"memory": NewMemory(1 << 20),
		"redis":  &Redis{Client: func() rueidis.Client { return c }, Prefix: "test:" + t.Name() + ":"},
	}
}

// TestStoreBehaviour runs the same steps against every backend: a miss, a hit, an overwrite,
// binary values kept byte for byte, and keys kept apart.
func TestStoreBehaviour(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			if v, err := s.Get(ctx, "k1", t0); err != nil || v != nil {
				t.Fatalf("empty store: Get = %q, %v; want a miss", v, err)
			}
			must(t, s.Put(ctx, "k1", []byte(`{"a":1}`), time.Minute, t0))
			if v, err := s.Get(ctx, "k1", t0.Add(time.Second)); err != nil || string(v) != `{"a":1}` {
				t.Fatalf("Get after Put = %q, %v", v, err)
			}
			must(t, s.Put(ctx, "k1", []byte(`{"a":2}`), time.Minute, t0))
			if v, _ := s.Get(ctx, "k1", t0); string(v) != `{"a":2}` {
				t.Fatalf("Get after overwrite = %q", v)
			}
			bin := []byte{0, 1, 2, 0xff, '\n', 0}
			must(t, s.Put(ctx, "bin", bin, time.Minute, t0))
			if v, _ := s.Get(ctx, "bin", t0); string(v) != string(bin) {
				t.Fatalf("binary value = %v, want %v", v, bin)
			}
			if v, _ := s.Get(ctx, "k2", t0); v != nil {
				t.Fatalf("other key = %q, want a miss", v)
			}
		})
	}
}

func TestMemoryExpires(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(1 << 20)
	must(t, m.Put(ctx, "k", []byte("v"), time.Minute, t0))
	if v, _ := m.Get(ctx, "k", t0.Add(time.Minute-time.Nanosecond)); string(v) != "v" {
		t.Fatalf("just before the ttl: %q", v)
	}
	if v, _ := m.Get(ctx, "k", t0.Add(time.Minute)); v != nil {
		t.Fatalf("at the ttl: %q, want a miss", v)
	}
	if m.Len() != 0 || m.Bytes() != 0 {
		t.Fatalf("an expired entry that was read stays: len %d, bytes %d", m.Len(), m.Bytes())
	}
}

func TestRedisExpires(t *testing.T) {
	srv := redisserver.Start(t)
	c := srv.Client()
	r := &Redis{Client: func() rueidis.Client { return c }}
	must(t, r.Put(context.Background(), "k", []byte("v"), 90*time.Second, t0))
	// The server's clock decides; the ttl it holds is what the test checks, without waiting.
	pttl, err := c.Do(context.Background(), c.B().Pttl().Key("qwen:cache:k").Build()).AsInt64()
	if err != nil || pttl <= 80_000 || pttl > 90_000 {
		t.Fatalf("PTTL = %d, %v; want (80000, 90000]", pttl, err)
	}
}

func TestRedisNotConnected(t *testing.T) {
	r := &Redis{Client: func() rueidis.Client { return nil }}
	if _, err := r.Get(context.Background(), "k", t0); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Get = %v", err)
	}
	if err := r.Put(context.Background(), "k", nil, time.Second, t0); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Put = %v", err)
	}
}

// TestMemoryBoundAndLRU fills past the bound: the least recently used entries go first, a
// read makes an entry recent, and the bytes held never exceed the bound.
func TestMemoryBoundAndLRU(t *testing.T) {
	ctx := context.Background()
	val := []byte(strings.Repeat("x", 100))
	per := int64(len("k0")+len(val)) + entryOverhead
	m := NewMemory(3 * per)
	for i := range 3 {
		must(t, m.Put(ctx, fmt.Sprintf("k%d", i), val, time.Hour, t0))
	}
	if m.Bytes() != 3*per || m.Len() != 3 {
		t.Fatalf("full: bytes %d len %d, want %d 3", m.Bytes(), m.Len(), 3*per)
	}
	m.Get(ctx, "k0", t0) // k0 recent: k1 is now the least recently used
	must(t, m.Put(ctx, "k3", val, time.Hour, t0))
	if v, _ := m.Get(ctx, "k1", t0); v != nil {
		t.Fatal("k1 (least recently used) survived")
	}
	for _, k := range []string{"k0", "k2", "k3"} {
		if v, _ := m.Get(ctx, k, t0); v == nil {
			t.Fatalf("%s evicted", k)
		}
	}
	if m.Bytes() > 3*per {
		t.Fatalf("bytes %d over the bound %d", m.Bytes(), 3*per)
	}
	if err := m.Put(ctx, "big", make([]byte, 3*per), time.Hour, t0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("larger than the cache: %v", err)
	}
	m.SetMax(per)
	if m.Len() != 1 || m.Bytes() != per {
		t.Fatalf("after SetMax: len %d bytes %d", m.Len(), m.Bytes())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
