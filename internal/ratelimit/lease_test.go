package ratelimit

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

// leaseCount is the number of leases lim holds for key.
func leaseCount(t *testing.T, srv *redisserver.Server, lim *Redis, key string) int64 {
	t.Helper()
	reply, err := srv.Do("ZCARD", lim.leaseKey(key))
	if err != nil {
		t.Fatal(err)
	}
	n, err := reply.AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRedisLeaseRenewedWhileHeld: a slot held past LeaseTTL (a long stream) is renewed and
// still held; once released it is free at once; a slot whose holder died is free after the TTL.
func TestRedisLeaseRenewedWhileHeld(t *testing.T) {
	ctx := context.Background()
	srv := redisserver.Start(t)
	clk := clocktesting.NewFakeClock(t0)
	lim := NewRedis(srv.Client(), RedisOptions{UseClientClock: true, LeaseTTL: 10 * time.Minute, Clock: clk})
	release, ok, err := lim.Acquire(ctx, "k", 1, clk.Now())
	if !ok || err != nil {
		t.Fatalf("Acquire: %v %v", ok, err)
	}
	for i := 0; i < 9; i++ { // 45 minutes in 5-minute steps: each step fires a renewal
		clk.Step(5 * time.Minute)
		waitFor(t, "the renewal", func() bool { return clk.HasWaiters() })
		if _, ok, err := lim.Acquire(ctx, "k", 1, clk.Now()); ok || err != nil {
			t.Fatalf("after %v: the held slot was free (%v, %v)", time.Duration(i+1)*5*time.Minute, ok, err)
		}
	}
	release()
	if _, ok, err := lim.Acquire(ctx, "k", 1, clk.Now()); !ok || err != nil {
		t.Fatalf("after release: %v %v", ok, err)
	}
	// That second slot is never released nor renewed (its renewals are not run: a dead
	// holder): taken until LeaseTTL, free after.
	lim2 := NewRedis(srv.Client(), RedisOptions{UseClientClock: true, LeaseTTL: 10 * time.Minute, Clock: clocktesting.NewFakeClock(t0)})
	if _, ok, _ := lim2.Acquire(ctx, "k", 1, clk.Now().Add(10*time.Minute-time.Microsecond)); ok {
		t.Fatal("the dead holder's slot expired early")
	}
	if _, ok, _ := lim2.Acquire(ctx, "k", 1, clk.Now().Add(10*time.Minute)); !ok {
		t.Fatal("the dead holder's slot did not expire")
	}
}

// TestRedisReleaseRetried: a release that cannot reach Redis is retried in the background, so
// the slot is free soon after Redis is back, not LeaseTTL later; the limiter closes only after.
func TestRedisReleaseRetried(t *testing.T) {
	ctx := context.Background()
	srv := redisserver.Start(t)
	link := newCuttableLink(t, srv.Addr())
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{link.addr}, ForceSingleClient: true, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	clk := clocktesting.NewFakeClock(t0)
	lim := NewRedis(client, RedisOptions{UseClientClock: true, LeaseTTL: 10 * time.Minute, Timeout: 50 * time.Millisecond, Clock: clk})
	release, ok, err := lim.Acquire(ctx, "k", 1, clk.Now())
	if !ok || err != nil {
		t.Fatalf("Acquire: %v %v", ok, err)
	}
	closed := make(chan struct{})
	lim.CloseWhenIdle(func() { close(closed) })
	link.cut()
	release() // fails: Redis cannot be reached
	link.restore()
	if n := leaseCount(t, srv, lim, "k"); n != 1 {
		t.Fatalf("%d leases after the failed release, want it still there", n)
	}
	select {
	case <-closed:
		t.Fatal("closed while a release is pending")
	default:
	}
	waitFor(t, "the retry scheduled", func() bool { return clk.HasWaiters() })
	// The first retry may still meet the client reconnecting (a busy machine): each one that
	// fails schedules the next, so keep stepping to it.
	waitFor(t, "the retried release", func() bool {
		if clk.HasWaiters() {
			clk.Step(30 * time.Second)
		}
		return leaseCount(t, srv, lim, "k") == 0
	})
	<-closed
}

// cuttableLink is a TCP relay to Redis that can be cut (every connection closed, new ones
// refused) and restored on the same address.
type cuttableLink struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newCuttableLink(t *testing.T, target string) *cuttableLink {
	l := &cuttableLink{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.addr = ln.Addr().String()
	l.serve(ln)
	t.Cleanup(l.cut)
	return l
}

func (l *cuttableLink) serve(ln net.Listener) {
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r, err := net.Dial("tcp", l.target)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, c, r)
			l.mu.Unlock()
			go func() { io.Copy(r, c); r.Close() }()
			go func() { io.Copy(c, r); c.Close() }()
		}
	}()
}

func (l *cuttableLink) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

func (l *cuttableLink) restore() {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		l.t.Fatal(err)
	}
	l.serve(ln)
}

// waitFor polls cond (background work of the limiter on real Redis) for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(time.Millisecond)
	}
}
