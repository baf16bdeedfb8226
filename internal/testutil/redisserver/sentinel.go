package redisserver

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// SentinelOptions configure StartSentinel.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor the master under; default "qwen".
	MasterName string
	// Replicas is the number of replicas; default 2.
	Replicas int
	// Sentinels is the number of sentinels (the quorum is a majority); default 3.
	Sentinels int
	// DownAfter is down-after-milliseconds: how long a silent master takes to be judged
	// down; default 1s.
	DownAfter time.Duration
}

// Sentinel is a master with replicas, each a redis-server, monitored by redis-sentinel
// processes, all on loopback.
type Sentinel struct {
	tb        testing.TB
	opts      SentinelOptions
	Data      []*Server // the master first, then the replicas, in start order
	Sentinels []*Server
}

// StartSentinel starts the group and returns once every replica is in sync and every
// sentinel knows the master, all its replicas and all the other sentinels.
func StartSentinel(tb testing.TB, opts SentinelOptions) *Sentinel {
	tb.Helper()
	if opts.MasterName == "" {
		opts.MasterName = "qwen"
	}
	if opts.Replicas == 0 {
		opts.Replicas = 2
	}
	if opts.Sentinels == 0 {
		opts.Sentinels = 3
	}
	if opts.DownAfter == 0 {
		opts.DownAfter = time.Second
	}
	g := &Sentinel{tb: tb, opts: opts}
	bin := tools.Path(tb, "redis-server")
	master := start(tb, bin, "", nil, nil)
	g.Data = append(g.Data, master)
	for range opts.Replicas {
		g.Data = append(g.Data, start(tb, bin, "", []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port())}, nil))
	}
	conf := fmt.Sprintf(`sentinel resolve-hostnames no
sentinel monitor %[1]s 127.0.0.1 %[2]d %[3]d
sentinel down-after-milliseconds %[1]s %[4]d
sentinel failover-timeout %[1]s 4000
sentinel parallel-syncs %[1]s 1
`, opts.MasterName, master.Port(), opts.Sentinels/2+1, opts.DownAfter.Milliseconds())
	sbin := tools.Path(tb, "redis-sentinel")
	for range opts.Sentinels {
		g.Sentinels = append(g.Sentinels, start(tb, sbin, conf, nil, nil))
	}
	g.WaitSettled(master, 30*time.Second)
	return g
}

// MasterName is the name the sentinels know the master by.
func (g *Sentinel) MasterName() string { return g.opts.MasterName }

// SentinelAddrs are the sentinels' addresses.
func (g *Sentinel) SentinelAddrs() []string {
	var out []string
	for _, s := range g.Sentinels {
		out = append(out, s.Addr())
	}
	return out
}

// Client returns a client that finds the master through the sentinels and follows a
// failover, closed when the test ends.
func (g *Sentinel) Client() rueidis.Client {
	g.tb.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  g.SentinelAddrs(),
		Sentinel:     rueidis.SentinelOption{MasterSet: g.opts.MasterName},
		DisableCache: true,
		Dialer:       net.Dialer{Timeout: 5 * time.Second},
	})
	if err != nil {
		g.tb.Fatalf("redisserver: sentinel client: %v", err)
	}
	g.Data[0].track(c)
	return c
}

// Master asks the running sentinels for the master's address and returns that server once
// they agree.
func (g *Sentinel) Master() *Server {
	g.tb.Helper()
	var addr string
	eventually(g.tb, 30*time.Second, "sentinels agree on the master", func() string {
		addr = ""
		for _, s := range g.Sentinels {
			if !s.Running() {
				continue
			}
			a, err := g.masterAddr(s)
			if err != nil {
				return err.Error()
			}
			if addr != "" && a != addr {
				return fmt.Sprintf("%s vs %s", addr, a)
			}
			addr = a
		}
		return ""
	})
	for _, s := range g.Data {
		if s.Addr() == addr {
			return s
		}
	}
	g.tb.Fatalf("redisserver: the sentinels' master %s is not one of ours", addr)
	return nil
}

func (g *Sentinel) masterAddr(s *Server) (string, error) {
	m, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.opts.MasterName)
	if err != nil {
		return "", err
	}
	hp, err := m.AsStrSlice()
	if err != nil || len(hp) != 2 {
		return "", fmt.Errorf("GET-MASTER-ADDR-BY-NAME: %v %v", hp, err)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// WaitSettled waits until master is the master by its own account and every sentinel's,
// every other running data server replicates it with its link up, and every running
// sentinel counts all running replicas and the other running sentinels.
func (g *Sentinel) WaitSettled(master *Server, timeout time.Duration) {
	g.tb.Helper()
	eventually(g.tb, timeout, "sentinel group settled on "+master.Addr(), func() string {
		if info, err := master.info("replication"); err != nil || info["role"] != "master" {
			return fmt.Sprintf("%s is a %q (%v)", master.Addr(), info["role"], err)
		}
		replicas, sentinels := 0, 0
		for _, s := range g.Data {
			if s == master || !s.Running() {
				continue
			}
			replicas++
			r, err := s.info("replication")
			if err != nil || r["role"] != "slave" || r["master_port"] != strconv.Itoa(master.Port()) || r["master_link_status"] != "up" {
				return fmt.Sprintf("%s: role %s of :%s, link %s (%v)", s.Addr(), r["role"], r["master_port"], r["master_link_status"], err)
			}
		}
		for _, s := range g.Sentinels {
			if s.Running() {
				sentinels++
			}
		}
		for _, s := range g.Sentinels {
			if !s.Running() {
				continue
			}
			if a, err := g.masterAddr(s); err != nil || a != master.Addr() {
				return fmt.Sprintf("sentinel %s: master %s %v", s.Addr(), a, err)
			}
			m, err := s.Do("SENTINEL", "MASTER", g.opts.MasterName)
			if err != nil {
				return err.Error()
			}
			kv, err := m.AsStrMap()
			if err != nil {
				return err.Error()
			}
			if kv["num-other-sentinels"] != strconv.Itoa(sentinels-1) || strings.Contains(kv["flags"], "down") {
				return fmt.Sprintf("sentinel %s: flags %s, %s other sentinels", s.Addr(), kv["flags"], kv["num-other-sentinels"])
			}
			// a stopped replica stays listed, flagged down
			if up, err := g.replicasUp(s); err != nil || up != replicas {
				return fmt.Sprintf("sentinel %s: %d replicas up, want %d (%v)", s.Addr(), up, replicas, err)
			}
		}
		return ""
	})
}

// replicasUp counts the replicas sentinel s sees, not down or disconnected, replicating
// with their link up.
func (g *Sentinel) replicasUp(s *Server) (int, error) {
	m, err := s.Do("SENTINEL", "REPLICAS", g.opts.MasterName)
	if err != nil {
		return 0, err
	}
	list, err := m.ToArray()
	if err != nil {
		return 0, err
	}
	up := 0
	for _, r := range list {
		kv, err := r.AsStrMap()
		if err != nil {
			return 0, err
		}
		if !strings.Contains(kv["flags"], "down") && !strings.Contains(kv["flags"], "disconnected") && kv["master-link-status"] == "ok" {
			up++
		}
	}
	return up, nil
}

// Failover asks a sentinel to fail over now (SENTINEL FAILOVER: a replica is promoted; the
// old master is turned into its replica some seconds later) and waits until the promoted
// replica is the master by its own account and every running sentinel's.
func (g *Sentinel) Failover(timeout time.Duration) (old, promoted *Server) {
	g.tb.Helper()
	old = g.Master()
	// A sentinel refuses (NOGOODSLAVE) until it has seen a replica healthy since the last
	// failover, which takes it up to a few seconds of INFO polling: ask until it accepts.
	eventually(g.tb, timeout, "SENTINEL FAILOVER accepted", func() string {
		if _, err := g.Sentinels[0].Do("SENTINEL", "FAILOVER", g.opts.MasterName); err != nil {
			return err.Error()
		}
		return ""
	})
	return old, g.waitNewMaster(old, timeout)
}

// KillMaster stops the master and waits until the sentinels have agreed it is down and
// promoted a replica that every running sentinel names; it returns both. The old master
// stays stopped.
func (g *Sentinel) KillMaster(timeout time.Duration) (old, promoted *Server) {
	g.tb.Helper()
	old = g.Master()
	old.Stop()
	return old, g.waitNewMaster(old, timeout)
}

func (g *Sentinel) waitNewMaster(old *Server, timeout time.Duration) *Server {
	g.tb.Helper()
	var promoted *Server
	eventually(g.tb, timeout, "a replica promoted", func() string {
		promoted = nil
		for _, s := range g.Data {
			if s == old || !s.Running() {
				continue
			}
			if info, err := s.info("replication"); err == nil && info["role"] == "master" {
				promoted = s
			}
		}
		if promoted == nil {
			return "no running replica is a master yet"
		}
		for _, s := range g.Sentinels {
			if !s.Running() {
				continue
			}
			if a, err := g.masterAddr(s); err != nil || a != promoted.Addr() {
				return fmt.Sprintf("sentinel %s names %s (%v), not %s", s.Addr(), a, err, promoted.Addr())
			}
		}
		return ""
	})
	return promoted
}
