package proc

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStopPidOnlyStopsTheRecordedProcess starts a process as the demo and the cluster do, and checks that a
// pid file whose start time does not match (the pid was reused) is never signalled, while the
// right one stops the process and its pid file.
func TestStopPidOnlyStopsTheRecordedProcess(t *testing.T) {
	dir := t.TempDir()
	pidPath := filepath.Join(dir, "sleep.Pid")
	d, err := Spawn([]string{"sleep", "60"}, nil, dir, filepath.Join(dir, "sleep.log"), pidPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ReadPid(pidPath)
	if err != nil || p.Pid != d.Pid || !p.Alive() {
		t.Fatalf("pid file %+v %v (pid %d)", p, err, d.Pid)
	}

	stale := filepath.Join(dir, "stale.pid")
	if err := os.WriteFile(stale, []byte(Pid{Pid: d.Pid, Start: p.Start + 1}.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := StopPid(stale, time.Second); err != nil {
		t.Fatal(err)
	}
	if !p.Alive() {
		t.Fatal("a pid file with another start time stopped the process")
	}

	if err := StopPid(pidPath, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Exited:
	case <-time.After(5 * time.Second):
		t.Fatal("process still running after stopPid")
	}
	if _, err := os.Stat(pidPath); !os.IsNotExist(err) {
		t.Fatalf("pid file left: %v", err)
	}
	if err := StopPid(pidPath, time.Second); err != nil {
		t.Fatalf("stopping an absent pid file: %v", err)
	}
}

func TestParsePid(t *testing.T) {
	for _, bad := range []string{"", "12", "x 1", "1 2", "12 y", "12 3 4"} {
		if _, err := ParsePid([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if p, err := ParsePid([]byte("123 456\n")); err != nil || p.Pid != 123 || p.Start != 456 {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestStoppedWaitsForEveryThread(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if Stopped(cmd.Process.Pid) {
		t.Fatal("a running process reports stopped")
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for !Stopped(cmd.Process.Pid) { // the stop is asynchronous; the test's deadline bounds it
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for Stopped(cmd.Process.Pid) {
		time.Sleep(time.Millisecond)
	}
}
