package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The node's addresses and device names are fixed, so one node runs per machine. lockFile
// serializes Start across processes (two test runs wait for each other instead of breaking
// each other's network), and markerFile names the state directory of the node that runs, so
// a node from another directory is found and not clobbered.
const (
	lockFile   = "/run/qwen-cluster.lock"
	markerFile = "/run/qwen-cluster.dir"
)

// machineLock is the held lock; Stop releases it.
type machineLock struct{ f *os.File }

// lockMachine waits, until ctx ends, for the machine-wide lock, then refuses if a node from
// another state directory still runs.
func lockMachine(ctx context.Context, dir string) (*machineLock, error) {
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("cluster: waiting for another node on this machine to stop (%s): %w", lockFile, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	if b, err := os.ReadFile(markerFile); err == nil {
		other := strings.TrimSpace(string(b))
		if running := runningComponents(other); len(running) > 0 {
			f.Close()
			return nil, fmt.Errorf("cluster: a node is already running from %s (%v); stop it with `make cluster-down` (QWEN_CLUSTER_DIR=%s)", other, running, other)
		}
		if other != dir {
			if err := Down(other); err != nil { // a crashed run elsewhere left this behind
				f.Close()
				return nil, fmt.Errorf("cluster: clearing the earlier run in %s: %w", other, err)
			}
		}
	}
	if err := os.WriteFile(markerFile, []byte(dir+"\n"), 0o644); err != nil {
		f.Close()
		return nil, err
	}
	return &machineLock{f: f}, nil
}

// release lets another node start.
func (l *machineLock) release() {
	if l != nil {
		_ = l.f.Close()
	}
}

// clearMarker removes the marker when it names dir (Down calls it once the node is gone).
func clearMarker(dir string) {
	if b, err := os.ReadFile(markerFile); err == nil && strings.TrimSpace(string(b)) == filepath.Clean(dir) {
		_ = os.Remove(markerFile)
	}
}
