package redisserver

import (
	"context"
	"testing"
	"time"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	c := s.Client()
	// A PING that must fail (paused, stopped) gives up after 200ms; one that must succeed
	// may take as long as a starved CPU needs.
	pingWithin := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return c.Ping(ctx).Err()
	}
	ping := func() error { return pingWithin(10 * time.Second) }
	pingFails := func() bool { return pingWithin(200*time.Millisecond) != nil }
	if err := ping(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()

	s.Pause()
	if !pingFails() {
		t.Error("PING answered while paused")
	}
	s.Resume()
	if err := ping(); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}

	s.Stop()
	if !pingFails() {
		t.Error("PING answered while stopped")
	}
	s.Restart()
	if s.Addr() != addr {
		t.Errorf("restarted on %s, want %s", s.Addr(), addr)
	}
	if err := ping(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if n, _ := c.Exists(context.Background(), "k").Result(); n != 0 {
		t.Error("data survived a restart without persistence")
	}
}

func TestServersAreIndependent(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers on %s", a.Addr())
	}
	ctx := context.Background()
	if err := a.Client().Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Client().Exists(ctx, "k").Result(); n != 0 {
		t.Error("a key written to one server is visible on the other")
	}
}
