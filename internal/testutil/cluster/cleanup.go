package cluster

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/proc"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// outsidePath is a path outside the state directory that the kubelet or containerd hard-code,
// with whether it existed before Start: Down removes it whole when it did not, and only the
// node's own entries when it did.
type outsidePath struct {
	Path    string `json:"path"`
	Existed bool   `json:"existed"`
}

// The hard-coded paths (REAL-NODE.md, pitfall 7).
const (
	kubeletDir     = "/var/lib/kubelet"    // device-plugins/kubelet.sock
	containerLogs  = "/var/log/containers" // symlinks to the pod logs
	cniCache       = "/var/lib/cni"        // libcni's results cache
	containerdRun  = "/run/containerd"     // s/<hash>: the shims' sockets
	cgroupRoot     = "/sys/fs/cgroup"
	kubepodsCgroup = "kubepods"
)

func outsidePaths() []outsidePath {
	var out []outsidePath
	for _, p := range []string{kubeletDir, containerLogs, cniCache, containerdRun} {
		_, err := os.Lstat(p)
		out = append(out, outsidePath{Path: p, Existed: err == nil})
	}
	return out
}

// Down stops the node whose state is in dir and removes what it created: its processes (by
// the recorded pids), the pods' processes (the kubepods cgroups), the containerd shims started
// for this node's socket, every mount under dir, the kubepods cgroups, the network devices,
// iptables chains and sysctls, and the files outside dir. It keeps dir/logs. A dir that holds
// no node is no error.
func Down(dir string) error {
	st, err := loadState(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr == nil {
			return clearDir(dir) // a run that failed before saving its state
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: reading %s: %w", filepath.Join(dir, "state.json"), err)
	}
	var errs []error
	stop := func(name string) {
		if err := proc.StopPid(filepath.Join(dir, "pids", name+".pid"), stopGrace(name)); err != nil {
			errs = append(errs, err)
		}
	}
	// The kubelet and kube-proxy first: nothing restarts a pod or rewrites a rule after this.
	stop("kube-proxy")
	stop("kubelet")
	errs = append(errs, killPods()...)
	for _, name := range []string{"kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd", "containerd"} {
		stop(name)
	}
	sock := filepath.Join(dir, "containerd", "containerd.sock")
	taskIDs := shimTaskIDs(dir)
	errs = append(errs, killShims(sock)...)
	errs = append(errs, unmountUnder(dir)...)
	removeKubepodsCgroups()
	kubeProxy := ""
	if p, err := lookupKubeProxy(); err == nil {
		kubeProxy = p
	}
	errs = append(errs, removeNetwork(findProgram("ip"), findProgram("iptables"), kubeProxy)...)
	for _, o := range st.Outside {
		errs = append(errs, removeOutside(o, dir, sock, taskIDs)...)
	}
	for name, v := range st.Sysctls {
		if err := writeSysctl(name, v); err != nil {
			errs = append(errs, err)
		}
	}
	if err := clearDir(dir); err != nil {
		errs = append(errs, err)
	}
	clearMarker(dir)
	return errors.Join(errs...)
}

// clearDir removes everything in dir but the logs.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Name() == "logs" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killPods kills every process in the kubepods cgroups (what the node's kubelet started) and
// waits until they are gone.
func killPods() []error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		pids := kubepodsPids()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return []error{fmt.Errorf("pod processes %v did not exit", pids)}
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond) // polling process exit
	}
}

// kubepodsCgroupDirs lists the kubepods cgroup directories of every cgroup v1 hierarchy,
// deepest first.
func kubepodsCgroupDirs() []string {
	var dirs []string
	hierarchies, _ := os.ReadDir(cgroupRoot)
	for _, h := range hierarchies {
		root := filepath.Join(cgroupRoot, h.Name(), kubepodsCgroup)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	return dirs
}

func kubepodsPids() []int {
	seen := map[int]bool{}
	var pids []int
	for _, d := range kubepodsCgroupDirs() {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func removeKubepodsCgroups() {
	for _, d := range kubepodsCgroupDirs() {
		_ = syscall.Rmdir(d)
	}
}

// killShims kills the containerd shims started for this node's socket (their command line
// names it with -address).
func killShims(sock string) []error {
	var errs []error
	for _, p := range shimPids(sock) {
		_ = syscall.Kill(p.Pid, syscall.SIGKILL)
		if !proc.WaitGone(p, 10*time.Second) {
			errs = append(errs, fmt.Errorf("containerd shim %d did not exit", p.Pid))
		}
	}
	return errs
}

// shimPids finds the shims whose -address is sock.
func shimPids(sock string) []proc.Pid {
	var pids []proc.Pid
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-address" && args[i+1] == sock {
				if _, start, err := proc.Stat(pid); err == nil {
					pids = append(pids, proc.Pid{Pid: pid, Start: start})
				}
			}
		}
	}
	return pids
}

// shimTaskIDs lists the ids of the tasks containerd ran for the node (a shim socket each).
func shimTaskIDs(dir string) []string {
	entries, _ := os.ReadDir(filepath.Join(dir, "containerd", "state", "io.containerd.runtime.v2.task", "k8s.io"))
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}

// shimSocket is the socket containerd 1.6 gives a task's shim: /run/containerd/s/ followed by
// the sha256 of <containerd address>/<namespace>/<id>.
func shimSocket(sock, id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(sock, "k8s.io", id)))
	return filepath.Join(containerdRun, "s", fmt.Sprintf("%x", sum))
}

// unmountUnder unmounts every mount point under dir, deepest first (lazily, so a busy one
// still goes).
func unmountUnder(dir string) []error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	prefix := strings.TrimRight(dir, "/") + "/"
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, prefix) {
			points = append(points, mp)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errs
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeOutside removes a hard-coded path the node used: all of it when it did not exist
// before, else only the node's entries in it.
func removeOutside(o outsidePath, dir, sock string, taskIDs []string) []error {
	if !o.Existed {
		if err := os.RemoveAll(o.Path); err != nil {
			return []error{err}
		}
		return nil
	}
	var victims []string
	switch o.Path {
	case kubeletDir:
		victims = append(victims, filepath.Join(kubeletDir, "device-plugins", "kubelet.sock"))
	case containerLogs:
		links, _ := os.ReadDir(containerLogs)
		for _, l := range links {
			p := filepath.Join(containerLogs, l.Name())
			if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, dir+"/") {
				victims = append(victims, p)
			}
		}
	case cniCache:
		matches, _ := filepath.Glob(filepath.Join(cniCache, "results", cniNetwork+"-*"))
		victims = append(victims, matches...)
	case containerdRun:
		for _, id := range taskIDs {
			victims = append(victims, shimSocket(sock, id))
		}
	}
	var errs []error
	for _, v := range victims {
		if err := os.RemoveAll(v); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// findProgram is a Debian program's path for Down, which may run without a full toolchain.
func findProgram(name string) string {
	if p, err := tools.Lookup(name); err == nil {
		return p
	}
	return name
}

func lookupKubeProxy() (string, error) { return tools.Lookup("kube-proxy") }

// Leftovers lists what a node started from dir left behind after Down: running components,
// pod processes, shims, mounts under dir, the bridges, iptables chains and the state files.
// Empty means Down cleaned up everything.
func Leftovers(dir string) []string {
	var out []string
	for _, name := range components {
		if p, err := proc.ReadPid(filepath.Join(dir, "pids", name+".pid")); err == nil && p.Alive() {
			out = append(out, fmt.Sprintf("process %s (%d)", name, p.Pid))
		}
	}
	if pids := kubepodsPids(); len(pids) > 0 {
		out = append(out, fmt.Sprintf("pod processes %v", pids))
	}
	if pids := shimPids(filepath.Join(dir, "containerd", "containerd.sock")); len(pids) > 0 {
		out = append(out, fmt.Sprintf("containerd shims %v", pids))
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), " "+strings.TrimRight(dir, "/")+"/") {
		out = append(out, "mounts under "+dir)
	}
	for _, br := range []string{NodeBridge, PodBridge} {
		if _, err := os.Stat(filepath.Join("/sys/class/net", br)); err == nil {
			out = append(out, "network device "+br)
		}
	}
	for _, bin := range []string{findProgram("iptables"), strings.Replace(findProgram("iptables"), "iptables", "ip6tables", 1)} {
		for _, table := range []string{"filter", "nat", "mangle", "raw"} {
			b, err := exec.Command(bin, "-w", "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if args := splitRule(line); len(args) >= 2 && (ourChain(args[1]) || jumpsToOurs(args)) {
					out = append(out, fmt.Sprintf("%s -t %s: %s", filepath.Base(bin), table, line))
				}
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "logs" {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}
