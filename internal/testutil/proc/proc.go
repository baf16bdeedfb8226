// Package proc holds the small pieces every helper that runs a real server process for tests
// needs: a free loopback port, a bounded, concurrency-safe log buffer, and daemons recorded in
// pid files (with their start time, so a reused pid is never signalled) that outlive the
// process that started them (the demo stack, the cluster).
package proc

import (
	"bytes"
	"net"
	"sync"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// maxLog bounds a Log; older output is dropped past it.
const maxLog = 1 << 20

// Log collects a process's output while a test may read it; it keeps at most 1 MiB.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p, dropping the older output once the log exceeds 1 MiB.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > maxLog {
		l.b.Reset()
	}
	return l.b.Write(p)
}

// String returns the output collected so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
