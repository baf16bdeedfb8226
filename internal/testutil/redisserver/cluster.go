package redisserver

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/qwenops/qwen-operator/internal/testutil/proc"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// Masters is the number of masters; default 3 (the least redis-cli accepts).
	Masters int
	// Replicas is the number of replicas of each master; default 0.
	Replicas int
	// NodeTimeout is cluster-node-timeout: how long a silent master takes to be failed over;
	// default 1s.
	NodeTimeout time.Duration
}

// Cluster is a Redis Cluster of redis-server processes on loopback, created with
// `redis-cli --cluster create`.
type Cluster struct {
	tb    testing.TB
	cli   string
	opts  ClusterOptions
	Nodes []*Server // masters first, then replicas, in creation order
}

// StartCluster starts a cluster and returns once every node agrees that all 16 384 slots
// are served (cluster_state:ok) and every replica is in sync with its master.
func StartCluster(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	if opts.Masters == 0 {
		opts.Masters = 3
	}
	if opts.NodeTimeout == 0 {
		opts.NodeTimeout = time.Second
	}
	c := &Cluster{tb: tb, cli: tools.Path(tb, "redis-cli"), opts: opts}
	bin := tools.Path(tb, "redis-server")
	n := opts.Masters * (1 + opts.Replicas)
	for range n {
		c.Nodes = append(c.Nodes, start(tb, bin, "", []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
			"--cluster-require-full-coverage", "no", // the slots of a live master stay served while another fails
			"--cluster-replica-validity-factor", "0", // a replica may take over however long its master was gone
		}, func(int) []string {
			bus, err := proc.FreePort() // the bus port is otherwise port+10000, possibly past 65535
			if err != nil {
				tb.Fatal(err)
			}
			return []string{"--cluster-port", strconv.Itoa(bus)}
		}))
	}
	args := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	c.redisCLI(args...)
	c.WaitHealthy(30 * time.Second)
	return c
}

// Addrs are the addresses of every node, the seeds a client is given.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, s := range c.Nodes {
		out = append(out, s.Addr())
	}
	return out
}

// Client returns a cluster client seeded with every node, closed when the test ends.
func (c *Cluster) Client() rueidis.Client {
	c.tb.Helper()
	cl, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: c.Addrs(), DisableCache: true, Dialer: net.Dialer{Timeout: 5 * time.Second},
	})
	if err != nil {
		c.tb.Fatalf("redisserver: cluster client: %v", err)
	}
	c.Nodes[0].track(cl)
	return cl
}

func (c *Cluster) redisCLI(args ...string) string {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.cli, args...).CombinedOutput()
	if err != nil {
		c.tb.Fatalf("redisserver: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// node is one line of CLUSTER NODES.
type node struct {
	id, addr, master string // master: the master's id for a replica, "-" for a master
	flags            []string
	slots            []string
	connected        bool
}

func (n node) is(flag string) bool {
	for _, f := range n.flags {
		if f == flag {
			return true
		}
	}
	return false
}

// nodes is CLUSTER NODES as seen by s.
func nodes(s *Server) ([]node, error) {
	m, err := s.Do("CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	txt, err := m.ToString()
	if err != nil {
		return nil, err
	}
	var out []node
	txt = strings.TrimPrefix(txt, "txt:") // RESP3 verbatim string
	for _, line := range strings.Split(strings.TrimSpace(txt), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		out = append(out, node{id: f[0], addr: addr, flags: strings.Split(f[2], ","), master: f[3],
			connected: f[7] == "connected", slots: f[8:]})
	}
	return out, nil
}

// WaitHealthy waits until every running node reports cluster_state:ok, every running node
// agrees on the masters, those masters serve all slots, and every running replica's link to
// its master is up.
func (c *Cluster) WaitHealthy(timeout time.Duration) {
	c.tb.Helper()
	eventually(c.tb, timeout, "cluster healthy", func() string {
		var view string
		for _, s := range c.Nodes {
			if !s.Running() {
				continue
			}
			m, err := s.Do("CLUSTER", "INFO")
			if err != nil {
				return fmt.Sprintf("%s: %v", s.Addr(), err)
			}
			txt, _ := m.ToString()
			info := parseInfo(txt)
			if info["cluster_state"] != "ok" || info["cluster_slots_ok"] != "16384" {
				nodesTxt := ""
				if m, err := s.Do("CLUSTER", "NODES"); err == nil {
					nodesTxt, _ = m.ToString()
				}
				return fmt.Sprintf("%s: cluster_state %s, slots ok %s, pfail %s, fail %s; its CLUSTER NODES:\n%s", s.Addr(), info["cluster_state"],
					info["cluster_slots_ok"], info["cluster_slots_pfail"], info["cluster_slots_fail"], nodesTxt)
			}
			ns, err := nodes(s)
			if err != nil {
				return err.Error()
			}
			var masters []string
			for _, n := range ns {
				if n.is("master") && !n.is("fail") && !n.is("fail?") && len(n.slots) > 0 {
					masters = append(masters, n.addr+strings.Join(n.slots, ","))
				}
			}
			sort.Strings(masters)
			v := strings.Join(masters, " ")
			if view == "" {
				view = v
			} else if v != view {
				return fmt.Sprintf("nodes disagree: %q vs %q", view, v)
			}
			repl, err := s.info("replication")
			if err != nil {
				return err.Error()
			}
			if repl["role"] == "slave" && repl["master_link_status"] != "up" {
				return fmt.Sprintf("%s: link to master %s", s.Addr(), repl["master_link_status"])
			}
		}
		return ""
	})
}

// MasterOf returns the node serving key's slot, as the first running node sees it.
func (c *Cluster) MasterOf(key string) *Server {
	c.tb.Helper()
	slot := strconv.Itoa(int(Slot(key)))
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		ns, err := nodes(s)
		if err != nil {
			c.tb.Fatal(err)
		}
		for _, n := range ns {
			if !n.is("master") || n.is("fail") {
				continue
			}
			for _, r := range n.slots {
				lo, hi, ok := strings.Cut(r, "-")
				if !ok {
					hi = lo
				}
				if inRange(slot, lo, hi) {
					return c.byAddr(n.addr)
				}
			}
		}
		break
	}
	c.tb.Fatalf("redisserver: no master serves slot %s", slot)
	return nil
}

func inRange(slot, lo, hi string) bool {
	s, _ := strconv.Atoi(slot)
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	return err1 == nil && err2 == nil && l <= s && s <= h
}

func (c *Cluster) byAddr(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr() == addr {
			return s
		}
	}
	c.tb.Fatalf("redisserver: no node at %s", addr)
	return nil
}

// ReplicaOf returns a running replica of master.
func (c *Cluster) ReplicaOf(master *Server) *Server {
	c.tb.Helper()
	id := c.ID(master)
	ns, err := nodes(c.running())
	if err != nil {
		c.tb.Fatal(err)
	}
	for _, n := range ns {
		if n.master == id && !n.is("fail") {
			if s := c.byAddr(n.addr); s.Running() {
				return s
			}
		}
	}
	c.tb.Fatalf("redisserver: master %s has no running replica", master.Addr())
	return nil
}

// running returns the first running node.
func (c *Cluster) running() *Server {
	c.tb.Helper()
	for _, s := range c.Nodes {
		if s.Running() {
			return s
		}
	}
	c.tb.Fatal("redisserver: no cluster node is running")
	return nil
}

// slotsOf is the slots node id serves as s sees them.
func slotsOf(s *Server, id string) (string, error) {
	ns, err := nodes(s)
	if err != nil {
		return "", err
	}
	for _, n := range ns {
		if n.id == id {
			return strings.Join(n.slots, " "), nil
		}
	}
	return "", fmt.Errorf("%s does not know node %s", s.Addr(), id)
}

// ID is a node's cluster node id.
func (c *Cluster) ID(s *Server) string {
	c.tb.Helper()
	m := s.MustDo("CLUSTER", "MYID")
	id, err := m.ToString()
	if err != nil {
		c.tb.Fatal(err)
	}
	return id
}

// KillMaster stops a master and waits until one of its replicas has taken over its slots and
// the cluster is healthy again; it returns the new master. The old one stays stopped (Restart
// brings it back as a replica). A master that has just received slots by resharding may take
// one of them down with it (seen with Redis 7.0: the slot ended up unassigned, although the
// replica agreed on its master's slots before the kill); kill another.
func (c *Cluster) KillMaster(old *Server, timeout time.Duration) (promoted *Server) {
	c.tb.Helper()
	replica := c.ReplicaOf(old)
	// The replica takes over the slots it believes its master serves: wait until it agrees
	// with the master (a slot just moved there by resharding reaches it by gossip).
	id := c.ID(old)
	eventually(c.tb, timeout, "replica "+replica.Addr()+" agrees on its master's slots", func() string {
		own, err1 := slotsOf(old, id)
		seen, err2 := slotsOf(replica, id)
		if err1 != nil || err2 != nil || own != seen {
			return fmt.Sprintf("master says %q, replica %q (%v %v)", own, seen, err1, err2)
		}
		return ""
	})
	old.Stop()
	eventually(c.tb, timeout, "replica "+replica.Addr()+" promoted", func() string {
		if info, err := replica.info("replication"); err != nil || info["role"] != "master" {
			return fmt.Sprintf("role %q (%v)", info["role"], err)
		}
		return ""
	})
	c.WaitHealthy(timeout)
	return replica
}

// Reshard moves slots slots from the master serving fromKey to the master serving toKey with
// `redis-cli --cluster reshard`, keys included, while clients keep using the cluster.
func (c *Cluster) Reshard(from, to *Server, slots int) {
	c.tb.Helper()
	c.redisCLI("--cluster", "reshard", from.Addr(),
		"--cluster-from", c.ID(from), "--cluster-to", c.ID(to),
		"--cluster-slots", strconv.Itoa(slots), "--cluster-yes", "--cluster-pipeline", "100")
	c.WaitHealthy(30 * time.Second)
}

// Masters are the running nodes that are masters with slots.
func (c *Cluster) Masters() []*Server {
	c.tb.Helper()
	var out []*Server
	for _, s := range c.Nodes {
		if s.Running() && s.Info("replication")["role"] == "master" {
			ns, err := nodes(s)
			if err != nil {
				c.tb.Fatal(err)
			}
			for _, n := range ns {
				if n.is("myself") && len(n.slots) > 0 {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// Slot is the Redis Cluster hash slot of key (CRC16 of its hash tag, mod 16384).
func Slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) % 16384
}

// crc16 is CRC16-CCITT (XModem), as Redis Cluster uses.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
