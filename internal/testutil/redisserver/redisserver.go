// Package redisserver runs real Redis for tests on loopback: a standalone redis-server
// (Start), a Redis Cluster (StartCluster) and a Sentinel-managed master with replicas
// (StartSentinel), with the controls outage and failover tests need (Stop, Restart, Pause,
// Resume, failover, resharding). Every process is stopped when the test ends.
package redisserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/qwenops/qwen-operator/internal/testutil/proc"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// Slack is how much longer than its timeout a limiter call may take in a test while Redis is
// down, hung or failing over. A client that ignores the timeout takes seconds (its own socket
// timeouts of 3 to 10 s, TCP keepalive, a retry loop), so a bound this generous still catches
// it, while a CPU starved by other work on a shared 2-core machine cannot trip it (decisions
// stalled 0.5 s under the race detector at a load average of 14). That calls return at their
// deadline and not later is shown without the clock, by ratelimit's
// TestRedisCallsReturnByTheDeadline.
const Slack = time.Second

// Server is a running redis-server (or redis-sentinel) owned by one test.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
	conf string    // config file content, written to dir/redis.conf before every start; "" none
	args []string  // extra arguments
	tls  *tlsFiles // serve TLS only (StartTLS)
	pass string    // requirepass, for the helpers' own connections
	wrap []string  // a command the server runs under (StartCallgrind)

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *proc.Log
	clients []rueidis.Client
	admin   rueidis.Client // for Do; connected on first use, reconnects after a restart
}

// Start starts redis-server (no persistence, bound to 127.0.0.1) on a free port, waits
// until it answers PING and stops it when the test ends. It fails the test if redis-server
// is not installed, naming the install command.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	return start(tb, tools.Path(tb, "redis-server"), "", args, nil)
}

// StartCallgrind starts redis-server under valgrind's callgrind with instrumentation off,
// to count the instructions Redis spends on some commands: Instrument(true), run them,
// Instrument(false), then Instructions.
func StartCallgrind(tb testing.TB) *Server {
	tb.Helper()
	dir := tb.TempDir()
	s := &Server{tb: tb, bin: tools.Path(tb, "redis-server"), dir: dir, wrap: []string{tools.Path(tb, "valgrind"),
		"--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + filepath.Join(dir, "callgrind.out")}}
	tb.Cleanup(s.cleanup)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if s.port, err = proc.FreePort(); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	tb.Fatalf("redisserver: %v", err)
	return nil
}

// Instrument turns callgrind's instrumentation on or off (StartCallgrind).
func (s *Server) Instrument(on bool) {
	s.tb.Helper()
	arg := map[bool]string{true: "on", false: "off"}[on]
	s.mu.Lock()
	pid := s.cmd.Process.Pid
	s.mu.Unlock()
	if out, err := exec.Command(tools.Path(s.tb, "callgrind_control"), "-i", arg, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		s.tb.Fatalf("redisserver: callgrind_control -i %s: %v\n%s", arg, err, out)
	}
}

// Instructions shuts the server down (StartCallgrind) and returns the instructions callgrind
// counted while instrumenting.
func (s *Server) Instructions() int64 {
	s.tb.Helper()
	_, _ = s.Do("SHUTDOWN", "NOSAVE") // the connection drops: no reply
	s.mu.Lock()
	exited, log := s.exited, s.log
	s.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(time.Minute):
		s.tb.Fatal("redisserver: valgrind did not exit after SHUTDOWN")
	}
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
	for _, line := range strings.Split(log.String(), "\n") {
		if _, v, ok := strings.Cut(line, "Collected :"); ok {
			n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(v), ",", ""), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	s.tb.Fatalf("redisserver: no instruction count in valgrind's output:\n%s", log)
	return 0
}

// StartTLS starts redis-server serving TLS only, with a certificate for 127.0.0.1 signed by
// a CA made for the test, and requiring password when it is not empty. It returns the server
// and the CA certificate's PEM file, which a client must trust.
func StartTLS(tb testing.TB, password string) (*Server, string) {
	tb.Helper()
	files := newTLSFiles(tb)
	s := &Server{tb: tb, bin: tools.Path(tb, "redis-server"), dir: tb.TempDir(), tls: files, pass: password}
	tb.Cleanup(s.cleanup)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, err = proc.FreePort(); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			return s, files.ca
		}
	}
	tb.Fatalf("redisserver: %v", err)
	return nil, ""
}

// start starts bin with the config file conf (may be "") and args, on a free port (and, when
// extra is set, a second free port handed to it).
func start(tb testing.TB, bin, conf string, args []string, portArgs func(port int) []string) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir(), conf: conf}
	tb.Cleanup(s.cleanup)
	var err error
	for attempt := 0; attempt < 5; attempt++ { // another process may take the port in between
		if s.port, err = proc.FreePort(); err != nil {
			continue
		}
		s.args = args
		if portArgs != nil {
			s.args = append(append([]string(nil), args...), portArgs(s.port)...)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	tb.Fatalf("redisserver: %v", err)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's port.
func (s *Server) Port() int { return s.port }

// Client returns a new client of this one server (no cluster or sentinel discovery), closed
// when the test ends.
func (s *Server) Client() rueidis.Client {
	s.tb.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{s.Addr()},
		ForceSingleClient: true,
		DisableCache:      true,
		Dialer:            net.Dialer{Timeout: 5 * time.Second},
	})
	if err != nil {
		s.tb.Fatalf("redisserver: client of %s: %v", s.Addr(), err)
	}
	s.track(c)
	return c
}

func (s *Server) track(c rueidis.Client) {
	s.mu.Lock()
	s.clients = append(s.clients, c)
	s.mu.Unlock()
}

// Do runs one command on this server, within 5s, and returns its reply. It uses one
// connection for the server's life, so that its commands add nothing but themselves to
// CommandStats.
func (s *Server) Do(args ...string) (rueidis.RedisMessage, error) {
	s.mu.Lock()
	if s.admin == nil {
		c, err := s.newAdmin()
		if err != nil {
			s.mu.Unlock()
			return rueidis.RedisMessage{}, err
		}
		s.admin = c
		s.clients = append(s.clients, c)
	}
	c := s.admin
	s.mu.Unlock()
	return do(c, args)
}

func newAdmin(addr string) (rueidis.Client, error) {
	return rueidis.NewClient(adminOption(addr))
}

func adminOption(addr string) rueidis.ClientOption {
	return rueidis.ClientOption{
		InitAddress: []string{addr}, ForceSingleClient: true, DisableCache: true,
		Dialer: net.Dialer{Timeout: 2 * time.Second}, DisableRetry: true,
	}
}

// newAdmin connects to this server with its TLS and password, if any.
func (s *Server) newAdmin() (rueidis.Client, error) {
	opt := adminOption(s.Addr())
	opt.Password = s.pass
	if s.tls != nil {
		opt.TLSConfig = s.tls.clientConfig()
	}
	return rueidis.NewClient(opt)
}

func do(c rueidis.Client, args []string) (rueidis.RedisMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Do(ctx, c.B().Arbitrary(args...).Build()).ToMessage()
}

// MustDo is Do that fails the test on error.
func (s *Server) MustDo(args ...string) rueidis.RedisMessage {
	s.tb.Helper()
	m, err := s.Do(args...)
	if err != nil {
		s.tb.Fatalf("redisserver: %s on %s: %v", strings.Join(args, " "), s.Addr(), err)
	}
	return m
}

// Do runs one command on the Redis (or Sentinel) at addr on a fresh connection, within 5s.
func Do(addr string, args ...string) (rueidis.RedisMessage, error) {
	c, err := newAdmin(addr)
	if err != nil {
		return rueidis.RedisMessage{}, err
	}
	defer c.Close()
	return do(c, args)
}

// Info returns the fields of INFO section on this server; it fails the test on error.
func (s *Server) Info(section string) map[string]string {
	s.tb.Helper()
	info, err := s.info(section)
	if err != nil {
		s.tb.Fatalf("redisserver: %v", err)
	}
	return info
}

// info is Info that returns the error: during a failover the servers drop their clients.
func (s *Server) info(section string) (map[string]string, error) {
	m, err := s.Do("INFO", section)
	if err != nil {
		return nil, fmt.Errorf("INFO %s on %s: %w", section, s.Addr(), err)
	}
	txt, err := m.ToString()
	if err != nil {
		return nil, fmt.Errorf("INFO %s on %s: %w", section, s.Addr(), err)
	}
	return parseInfo(txt), nil
}

// parseInfo parses the "field:value" lines of INFO or CLUSTER INFO (over RESP3 a verbatim
// string, which may keep its "txt:" format prefix).
func parseInfo(txt string) map[string]string {
	txt = strings.TrimPrefix(txt, "txt:")
	out := map[string]string{}
	for _, line := range strings.Split(txt, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

// CommandStats returns the calls of each command since the start or the last ResetStats,
// from INFO commandstats ("evalsha", "zrem", ...; subcommands as "config|resetstat"), not
// counting INFO. Commands a script runs are counted too (an EVALSHA of a script that calls
// GET and SET counts evalsha, get and set once each).
func (s *Server) CommandStats() map[string]int64 {
	s.tb.Helper()
	return parseCommandStats(s.Info("commandstats"))
}

// CPUTime is the CPU time (user + system) the server process has used, from /proc.
func (s *Server) CPUTime() time.Duration {
	s.tb.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.tb.Fatal("redisserver: CPUTime: server not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		s.tb.Fatalf("redisserver: CPUTime: %v", err)
	}
	// the fields after the command name (which may hold spaces) start after its ')'
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14 of stat
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on Linux.
const clockTicks = 100

// ResetStats zeroes the command statistics (CONFIG RESETSTAT).
func (s *Server) ResetStats() {
	s.tb.Helper()
	s.MustDo("CONFIG", "RESETSTAT")
}

// CommandStats is Server.CommandStats for the Redis at addr.
func CommandStats(addr string) (map[string]int64, error) {
	m, err := Do(addr, "INFO", "commandstats")
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats on %s: %w", addr, err)
	}
	txt, err := m.ToString()
	if err != nil {
		return nil, err
	}
	return parseCommandStats(parseInfo(txt)), nil
}

func parseCommandStats(info map[string]string) map[string]int64 {
	stats := map[string]int64{}
	for k, v := range info {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok || name == "info" {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
		if n, err := strconv.ParseInt(calls, 10, 64); err == nil {
			stats[name] = n
		}
	}
	return stats
}

// Stop kills the server (an outage); Restart brings it back on the same port, empty unless
// its own files (a cluster node's nodes.conf) say otherwise.
func (s *Server) Stop() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Running reports whether the server process is running (it may be paused).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Restart starts the server again on the same port after Stop.
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	s.stopLocked()
	s.mu.Unlock()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.start(); err == nil {
			return
		}
	}
	s.tb.Fatalf("redisserver: restart on port %d: %v", s.port, err)
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing answers.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

// Log is the server's output so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

func (s *Server) signal(sig syscall.Signal) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.tb.Fatalf("redisserver: %v: server not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redisserver: %v: %v", sig, err)
	}
}

func (s *Server) start() error {
	var args []string
	if s.conf != "" {
		conf := filepath.Join(s.dir, "redis.conf")
		if _, err := os.Stat(conf); err != nil { // Sentinel rewrites its file: keep it on restart
			if err := os.WriteFile(conf, []byte(s.conf), 0o644); err != nil {
				return err
			}
		}
		args = append(args, conf)
	}
	port := []string{"--port", strconv.Itoa(s.port)}
	if s.tls != nil {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", s.tls.cert, "--tls-key-file", s.tls.key, "--tls-ca-cert-file", s.tls.ca, "--tls-auth-clients", "no"}
	}
	if s.pass != "" {
		port = append(port, "--requirepass", s.pass)
	}
	args = append(args, port...)
	args = append(args,
		"--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
		"--dir", s.dir, "--daemonize", "no", "--loglevel", "notice")
	if filepath.Base(s.bin) != "redis-sentinel" {
		args = append(args, "--repl-diskless-sync-delay", "0") // a replica syncs at once, not after 5s
	}
	args = append(args, s.args...)
	log := &proc.Log{}
	cmd := exec.Command(s.bin, args...)
	if len(s.wrap) > 0 {
		cmd = exec.Command(s.wrap[0], append(append(s.wrap[1:len(s.wrap):len(s.wrap)], s.bin), args...)...)
	}
	cmd.Stdout, cmd.Stderr = log, log
	// Should the test process die without its cleanups (a crash), so does the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := s.waitPing(exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%v; output:\n%s", err, log.String())
	}
	s.mu.Lock()
	s.cmd, s.exited, s.log = cmd, exited, log
	s.mu.Unlock()
	return nil
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot exit
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

func (s *Server) cleanup() {
	s.mu.Lock()
	clients := s.clients
	s.clients = nil
	s.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// waitPing polls until the server answers PING, it exits, or 10s (under valgrind 60s) pass.
func (s *Server) waitPing(exited <-chan struct{}) error {
	addr := s.Addr()
	wait := 10 * time.Second
	if len(s.wrap) > 0 {
		wait = time.Minute
	}
	deadline := time.Now().Add(wait)
	for {
		c, err := s.newAdmin()
		if err == nil {
			_, err = do(c, []string{"PING"})
			c.Close()
		}
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before answering PING", addr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer PING: %v", addr, err)
		}
	}
}

var debugWait = false

// eventually polls cond every 20ms until it returns "" or timeout passes, then fails the test
// with the last reason it gave.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if debugWait {
			tb.Logf("%s: %s", what, why)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redisserver: %s not within %v: %s", what, timeout, why)
		}
		time.Sleep(20 * time.Millisecond) // polling a real process's state, not waiting for our own logic
	}
}
