package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qwenops/qwen-operator/internal/testutil/proc"
)

// PeakMemory returns the peak resident set (VmHWM) of the node's processes so far, summed,
// and one line per process: the components, the containerd shims and the pods' processes.
func (c *Cluster) PeakMemory() (total int64, lines []string) {
	add := func(what string, pid int) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += kb << 10
				lines = append(lines, fmt.Sprintf("%-28s %5d MiB", what, kb>>10))
			}
		}
	}
	for _, name := range components {
		if p, err := proc.ReadPid(filepath.Join(c.Dir, "pids", name+".pid")); err == nil && p.Alive() {
			add(name, p.Pid)
		}
	}
	for _, pid := range shimPids(c.ContainerdSocket()) {
		add("containerd-shim", pid.Pid)
	}
	for _, pid := range kubepodsPids() {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		add("pod: "+strings.TrimSpace(string(comm)), pid)
	}
	return total, lines
}
