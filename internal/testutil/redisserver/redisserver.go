// Package redisserver runs a real redis-server on a free loopback port for tests, with
// the controls outage tests need (Stop, Restart, Pause, Resume).
package redisserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qwenops/qwen-operator/internal/testutil/proc"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// Server is a running redis-server owned by one test.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	port int

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *bytes.Buffer
	clients []redis.UniversalClient
}

// Start starts redis-server (no persistence, bound to 127.0.0.1) on a free port, waits
// until it answers PING and stops it when the test ends. It fails the test if redis-server
// is not installed, naming the install command.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: tools.Path(tb, "redis-server"), dir: tb.TempDir()}
	tb.Cleanup(s.cleanup)
	var err error
	for attempt := 0; attempt < 5; attempt++ { // another process may take the port in between
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

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Client returns a new client of the server, closed when the test ends. It honours
// context deadlines on socket I/O (ContextTimeoutEnabled) and pools up to 128 connections.
func (s *Server) Client() redis.UniversalClient {
	c := redis.NewClient(&redis.Options{
		Addr:                  s.Addr(),
		ContextTimeoutEnabled: true,
		PoolSize:              128,
		DisableIdentity:       true,
	})
	s.mu.Lock()
	s.clients = append(s.clients, c)
	s.mu.Unlock()
	return c
}

// Stop kills the server (an outage); Restart brings it back on the same port, empty.
func (s *Server) Stop() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
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
	log := &bytes.Buffer{}
	cmd := exec.Command(s.bin,
		"--save", "", "--appendonly", "no",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--daemonize", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := waitPing(s.Addr(), exited); err != nil {
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
	defer s.mu.Unlock()
	for _, c := range s.clients {
		_ = c.Close()
	}
	s.clients = nil
	s.stopLocked()
}

// waitPing polls until the server answers PING, it exits, or 10s pass.
func waitPing(addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, DisableIdentity: true})
	defer c.Close()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited before answering PING", addr)
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s did not answer PING: %v", addr, err)
		case <-tick.C:
		}
	}
}
