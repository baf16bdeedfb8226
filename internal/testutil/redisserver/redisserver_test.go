package redisserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

func ping(c rueidis.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	return c.Do(ctx, c.B().Ping().Build()).Error()
}

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	c := s.Client()
	if err := ping(c); err != nil {
		t.Fatalf("PING: %v", err)
	}
	if err := c.Do(context.Background(), c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()

	s.Pause()
	if err := ping(c); err == nil {
		t.Error("PING answered while paused")
	}
	s.Resume()
	if err := ping(c); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}

	s.Stop()
	if err := ping(c); err == nil {
		t.Error("PING answered while stopped")
	}
	s.Restart()
	if s.Addr() != addr {
		t.Errorf("restarted on %s, want %s", s.Addr(), addr)
	}
	if err := ping(c); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if n, _ := c.Do(context.Background(), c.B().Exists().Key("k").Build()).AsInt64(); n != 0 {
		t.Error("data survived a restart without persistence")
	}
}

func TestServersAreIndependent(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers on %s", a.Addr())
	}
	a.MustDo("SET", "k", "a")
	if m := b.MustDo("EXISTS", "k"); asInt(t, m) != 0 {
		t.Error("a key written to one server is visible on the other")
	}
}

func TestCommandStats(t *testing.T) {
	s := Start(t)
	s.MustDo("SET", "k", "v")
	s.MustDo("EVAL", "return redis.call('GET', KEYS[1])", "1", "k")
	st := s.CommandStats()
	if st["set"] != 1 || st["eval"] != 1 || st["get"] != 1 {
		t.Errorf("stats %v, want set, eval and get once each", st)
	}
	s.ResetStats()
	if st := s.CommandStats(); len(st) != 1 || st["config|resetstat"] != 1 {
		t.Errorf("stats after reset %v, want only config|resetstat", st)
	}
}

// TestSlot: Slot agrees with the server's CLUSTER KEYSLOT, hash tags included.
func TestSlot(t *testing.T) {
	c := StartCluster(t, ClusterOptions{})
	for _, k := range []string{"", "a", "foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "qwen:rl:{ip:10.0.0.1}:requests:hy:30:60000000:10"} {
		want := asInt(t, c.Nodes[0].MustDo("CLUSTER", "KEYSLOT", k))
		if got := Slot(k); int64(got) != want {
			t.Errorf("Slot(%q) = %d, want %d", k, got, want)
		}
	}
}

// TestCluster: a 3-master cluster with a replica each serves keys on every master, survives
// a resharding and the loss of a master, and the killed master rejoins as a replica.
func TestCluster(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Replicas: 1})
	if n := len(c.Masters()); n != 3 {
		t.Fatalf("%d masters, want 3", n)
	}
	cl := c.Client()
	ctx := context.Background()
	keys := map[*Server]string{}
	for i := 0; len(keys) < 3 && i < 1000; i++ {
		k := fmt.Sprintf("k%d", i)
		keys[c.MasterOf(k)] = k
	}
	if len(keys) != 3 {
		t.Fatalf("keys reach %d masters, want 3", len(keys))
	}
	for _, k := range keys {
		if err := cl.Do(ctx, cl.B().Set().Key(k).Value(k).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	masters := c.Masters()
	c.Reshard(masters[0], masters[1], 2000)
	start := time.Now()
	old := masters[2]
	promoted := c.KillMaster(old, 60*time.Second)
	t.Logf("master killed, replica promoted, cluster healthy in %v", time.Since(start))
	if old == promoted || c.MasterOf(keys[old]) != promoted {
		t.Fatalf("after killing %s, the key's master is %s", old.Addr(), c.MasterOf(keys[old]).Addr())
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, k := range keys {
		for {
			v, err := cl.Do(ctx, cl.B().Get().Key(k).Build()).ToString()
			if err == nil && v == k {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s after resharding and failover: %q, %v", k, v, err)
			}
		}
	}
	old.Restart()
	c.WaitHealthy(30 * time.Second)
	if role := old.Info("replication")["role"]; role != "slave" {
		t.Errorf("the restarted master is a %s, want a replica", role)
	}
}

// TestSentinel: the sentinels promote a replica when asked and when the master dies, and a
// sentinel client follows both.
func TestSentinel(t *testing.T) {
	g := StartSentinel(t, SentinelOptions{})
	cl := g.Client()
	ctx := context.Background()
	if err := cl.Do(ctx, cl.B().Set().Key("k").Value("1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	first := g.Master()
	start := time.Now()
	_, second := g.Failover(30 * time.Second)
	t.Logf("SENTINEL FAILOVER: replica promoted in %v", time.Since(start))
	if second == first {
		t.Fatal("SENTINEL FAILOVER kept the master")
	}
	start = time.Now()
	old, third := g.KillMaster(60 * time.Second)
	t.Logf("master killed: replica promoted in %v", time.Since(start))
	if old != second || third == second {
		t.Fatalf("killed %s, promoted %s", old.Addr(), third.Addr())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cl.Do(ctx, cl.B().Incr().Key("k").Build()).Error()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("INCR through the sentinel client after failovers: %v", err)
		}
	}
	if v := asString(t, third.MustDo("GET", "k")); v != "2" {
		t.Errorf("k = %q on the new master, want 2 (the write before and the one after)", v)
	}
}

func asInt(t *testing.T, m rueidis.RedisMessage) int64 {
	t.Helper()
	n, err := m.AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func asString(t *testing.T, m rueidis.RedisMessage) string {
	t.Helper()
	v, err := m.ToString()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
