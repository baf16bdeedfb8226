package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Pid is a process recorded in a pid file: its pid and its start time in clock ticks since
// boot (/proc/PID/stat field 22), so that a pid the kernel reused for another program is
// never signalled.
type Pid struct {
	Pid   int
	Start uint64
}

func (p Pid) String() string { return fmt.Sprintf("%d %d\n", p.Pid, p.Start) }

// ParsePid parses the content of a pid file, "PID STARTTIME".
func ParsePid(b []byte) (Pid, error) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return Pid{}, fmt.Errorf("pid file %q: want \"PID STARTTIME\"", strings.TrimSpace(string(b)))
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 1 {
		return Pid{}, fmt.Errorf("pid file: bad pid %q", f[0])
	}
	start, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return Pid{}, fmt.Errorf("pid file: bad start time %q", f[1])
	}
	return Pid{Pid: pid, Start: start}, nil
}

// Stat returns the state letter and start time of a process from /proc/PID/stat.
func Stat(pid int) (state byte, start uint64, err error) {
	return statFile(fmt.Sprintf("/proc/%d/stat", pid))
}

func statFile(path string) (state byte, start uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: parse after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("%s: unexpected format", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("%s: unexpected format", path)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return f[0][0], start, err
}

// Stopped reports whether every thread of the process is stopped by a signal (state T):
// SIGSTOP is delivered asynchronously, so a thread may run on for a moment after kill returns.
func Stopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		if state, _, err := statFile(t); err != nil || state != 'T' {
			return false
		}
	}
	return true
}

// Alive reports whether the recorded process still runs (a zombie does not count).
func (p Pid) Alive() bool {
	state, start, err := Stat(p.Pid)
	return err == nil && start == p.Start && state != 'Z' && state != 'X'
}

// Record writes the pid file of a process that is running now.
func Record(path string, pid int) error {
	_, start, err := Stat(pid)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, []byte(Pid{Pid: pid, Start: start}.String()), 0o644)
}

// ReadPid reads a pid file.
func ReadPid(path string) (Pid, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Pid{}, err
	}
	return ParsePid(b)
}

// StopPid stops the process recorded in path, if it is still the same process: SIGTERM, then,
// after grace, SIGKILL to its process group (Spawn starts every daemon as the leader of its
// own session, so the group holds exactly what it started). It removes the pid file once the
// process is gone; a missing pid file is no error.
func StopPid(path string, grace time.Duration) error {
	p, err := ReadPid(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if p.Alive() {
		_ = syscall.Kill(p.Pid, syscall.SIGTERM)
		if !WaitGone(p, grace) {
			_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
			_ = syscall.Kill(p.Pid, syscall.SIGKILL)
			if !WaitGone(p, 10*time.Second) {
				return fmt.Errorf("pid %d (%s) did not exit", p.Pid, filepath.Base(path))
			}
		}
	}
	return os.Remove(path)
}

// KillPid kills the recorded process at once (SIGKILL), as a crash or an OOM kill would.
func KillPid(path string) error {
	p, err := ReadPid(path)
	if err != nil {
		return err
	}
	if !p.Alive() {
		return fmt.Errorf("pid %d (%s) is not running", p.Pid, filepath.Base(path))
	}
	if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
		return err
	}
	if !WaitGone(p, 10*time.Second) {
		return fmt.Errorf("pid %d did not exit after SIGKILL", p.Pid)
	}
	return os.Remove(path)
}

// WaitGone polls until the process has exited or d passed; it reports whether it exited.
func WaitGone(p Pid, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for p.Alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond) // polling process state
	}
	return true
}

// Daemon is a process started by Spawn.
type Daemon struct {
	Pid int
	// Exited is closed when the process exited (only while the spawning process runs).
	Exited chan struct{}
}

// Spawn starts argv as a daemon: in its own session (so it outlives this process and its
// terminal, and its process group holds only what it starts), stdin from /dev/null, output
// appended to logPath, working directory dir, environment os.Environ() plus env. It records
// the pid in pidPath. A goroutine reaps the process when it exits while this process runs.
func Spawn(argv, env []string, dir, logPath, pidPath string) (*Daemon, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	d := &Daemon{Pid: cmd.Process.Pid, Exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(d.Exited) }()
	if err := Record(pidPath, d.Pid); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	return d, nil
}

// WaitReady polls check every 100ms until it succeeds, the daemon exits, or ctx ends.
func (d *Daemon) WaitReady(ctx context.Context, what string, check func(context.Context) error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-d.Exited:
			return fmt.Errorf("%s exited before it was ready (last check: %v)", what, last)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v", what, last)
		case <-tick.C:
		}
	}
}

// ChildPids returns the pids of this process's children running the named programs.
func ChildPids(names ...string) map[string]int {
	out := map[string]int{}
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, comm, err := parent(pid)
		if err != nil || ppid != self {
			continue
		}
		for _, n := range names {
			// comm is truncated to 15 characters by the kernel.
			if comm == n || len(n) > 15 && comm == n[:15] {
				out[n] = pid
			}
		}
	}
	return out
}

// procParent returns the parent pid and command name of a process.
func parent(pid int) (ppid int, comm string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 2 {
		return 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, s[open+1 : end], err
}

// WriteFileAtomic writes a file through a temporary file and a rename, so readers never see
// it half written.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
