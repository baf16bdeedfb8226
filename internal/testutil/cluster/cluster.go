// Package cluster starts and stops a real single-node Kubernetes on this machine, for the
// tests that need pods (test/cluster) and for `make cluster`: etcd, kube-apiserver with x509
// authentication and Node+RBAC authorization, kube-controller-manager (service-account
// tokens, garbage collector, endpoints), kube-scheduler, its own containerd (own root, state
// and socket; CRI on; the project's pause image as sandbox image), a kubelet serving TLS,
// kube-proxy in iptables mode, a CNI bridge network and CoreDNS. The node advertises
// nvidia.com/gpu as an extended resource so GPU-requesting pods schedule (a real cluster runs
// the NVIDIA device plugin instead). Images are imported into containerd from OCI tarballs
// (internal/imagebuild); nothing is pulled.
//
// The recipe, and the reasons for each setting, are in shared/design/REAL-NODE.md. Addresses
// are fixed, so one cluster runs per machine: the node is 10.250.0.1 on the port-less bridge
// qwen0, pods are 10.244.0.0/24 on qwenbr0, Services 10.96.0.0/24. They exist only inside the
// bridges and network namespaces this package creates. Every process is recorded by pid
// under the state directory; Stop (or Down, from another process) ends exactly those and
// the pods' processes, unmounts, and removes the network devices, iptables chains and files
// it created, even after a failed run: Start first clears what an earlier run left.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/proc"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// Fixed names and addresses of the node.
const (
	NodeName = "qwen-node"
	// NodeIP is the node's address, on the bridge NodeBridge; every node port listens there.
	NodeIP     = "10.250.0.1"
	NodeBridge = "qwen0"
	// PodBridge is the CNI bridge of the pods, PodGateway its address on the host.
	PodBridge   = "qwenbr0"
	PodCIDR     = "10.244.0.0/24"
	PodGateway  = "10.244.0.1"
	ServiceCIDR = "10.96.0.0/24"
	// APIServiceIP is the kubernetes Service, DNSServiceIP the cluster DNS Service.
	APIServiceIP = "10.96.0.1"
	DNSServiceIP = "10.96.0.10"
	// APIPort is the API server's port on NodeIP.
	APIPort    = 16443
	cniNetwork = "qwennet"
)

// etcd listens on loopback only.
const (
	etcdClientPort  = 32379
	etcdPeerPort    = 32380
	etcdMetricsPort = 32381
)

// Options configure Start.
type Options struct {
	// Dir is the state directory; default DefaultDir(). Everything the cluster writes goes
	// there, except the few paths the kubelet and containerd hard-code (see cleanup.go).
	Dir string
	// Images are OCI image tarballs to import into containerd (internal/imagebuild).
	Images []string
	// PauseImage is the sandbox image; it must be among Images.
	PauseImage string
	// CoreDNSImage runs cluster DNS; it must be among Images.
	CoreDNSImage string
	// GPUs is how many nvidia.com/gpu the node advertises; default 4.
	GPUs int
	// Log receives progress lines; default io.Discard.
	Log io.Writer
}

// DefaultDir is $QWEN_CLUSTER_DIR, else /tmp/qwen-cluster.
func DefaultDir() string {
	if d := os.Getenv("QWEN_CLUSTER_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "qwen-cluster")
}

// Cluster is a running node.
type Cluster struct {
	// Dir is the state directory.
	Dir  string
	opts Options
	bins binaries
	log  io.Writer
	lock *machineLock
	// Timings records how long each start step took.
	Timings []Timing
}

// Timing is how long one start step took, since Start began.
type Timing struct {
	Step  string
	Since time.Duration
}

type binaries struct {
	etcd, apiserver, controllerManager, scheduler, kubelet, kubeProxy, kubectl string
	containerd, ctr, iptables, ip                                              string
}

// Kubeconfig is the path of the administrator's kubeconfig (system:masters).
func (c *Cluster) Kubeconfig() string { return c.path("kubeconfigs", "admin.kubeconfig") }

// APIServerURL is the API server's URL.
func (c *Cluster) APIServerURL() string { return fmt.Sprintf("https://%s:%d", NodeIP, APIPort) }

// ContainerdSocket is the CRI socket of the node's containerd.
func (c *Cluster) ContainerdSocket() string { return c.path("containerd", "containerd.sock") }

// Kubectl is the kubectl built with the kube binaries.
func (c *Cluster) Kubectl() string { return c.bins.kubectl }

// LogPath is the log file of a component (etcd, kube-apiserver, kubelet, containerd, ...).
func (c *Cluster) LogPath(component string) string { return c.path("logs", component+".log") }

// components in start order; Stop goes backwards.
var components = []string{"containerd", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}

// Start starts a node and returns once it is Ready, advertises its GPUs, the default
// ServiceAccount exists and cluster DNS answers. It needs root. On error it stops what it
// started. The caller must call Stop.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("cluster: a real node needs root (it creates bridges and iptables rules and runs containerd and the kubelet); run the tests as root")
	}
	if opts.Dir == "" {
		opts.Dir = DefaultDir()
	}
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, err
	}
	if opts.GPUs == 0 {
		opts.GPUs = 4
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.PauseImage == "" || opts.CoreDNSImage == "" {
		return nil, errors.New("cluster: Options.PauseImage and Options.CoreDNSImage are required")
	}
	c := &Cluster{Dir: opts.Dir, opts: opts, log: opts.Log}
	if c.bins, err = lookupBinaries(); err != nil {
		return nil, err
	}
	lockCtx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	if c.lock, err = lockMachine(lockCtx, c.Dir); err != nil {
		return nil, err
	}
	// Whatever an earlier run left behind (a crashed test) goes first.
	if err := Down(c.Dir); err != nil {
		c.lock.release()
		return nil, fmt.Errorf("cluster: clearing an earlier run: %w", err)
	}
	begin := time.Now()
	step := func(name string) {
		c.Timings = append(c.Timings, Timing{Step: name, Since: time.Since(begin)})
		fmt.Fprintf(c.log, "cluster: %-40s %6.1fs\n", name, time.Since(begin).Seconds())
	}
	for _, d := range []string{"logs", "pids", "pki"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			return nil, err
		}
	}
	st := state{Dir: c.Dir, Outside: outsidePaths()}
	if st.Sysctls, err = readSysctls(); err != nil {
		return nil, err
	}
	if err := st.save(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, c.LogTails(20))
			if derr := Down(c.Dir); derr != nil {
				err = errors.Join(err, derr)
			}
			c.lock.release()
		}
	}()
	if err := writePKI(c.path("pki")); err != nil {
		return nil, err
	}
	if err := c.writeConfigs(); err != nil {
		return nil, err
	}
	if err := c.setupNetwork(); err != nil {
		return nil, err
	}
	step("network and configuration")

	// containerd and the image import run while the control plane starts.
	images := make(chan error, 1)
	go func() { images <- c.startContainerd(ctx) }()
	if err := c.startControlPlane(ctx); err != nil {
		<-images
		return nil, err
	}
	step("etcd, kube-apiserver ready")
	if err := <-images; err != nil {
		return nil, err
	}
	step("containerd ready, images imported")
	if err := c.startNode(ctx); err != nil {
		return nil, err
	}
	step("kubelet, kube-proxy started")
	if err := c.waitNode(ctx, opts.GPUs); err != nil {
		return nil, err
	}
	step("node Ready with nvidia.com/gpu")
	if err := c.startDNS(ctx); err != nil {
		return nil, err
	}
	step("cluster DNS ready")
	return c, nil
}

// Stop stops the node, removes everything it created (Down) and lets another node start.
func (c *Cluster) Stop() error {
	err := Down(c.Dir)
	c.lock.release()
	return err
}

// spawn starts a component as a daemon and waits until ready succeeds.
func (c *Cluster) spawn(ctx context.Context, name string, argv []string, timeout time.Duration, ready func(context.Context) error) error {
	d, err := proc.Spawn(argv, []string{"PATH=" + systemPath}, c.Dir, c.LogPath(name), c.path("pids", name+".pid"))
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return d.WaitReady(rctx, name, ready)
}

// systemPath finds runc, the containerd shim, iptables, mount and the CNI tools.
const systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func lookupBinaries() (binaries, error) {
	var b binaries
	var errs []error
	for _, x := range []struct {
		name string
		dst  *string
	}{
		{"etcd", &b.etcd}, {"kube-apiserver", &b.apiserver}, {"kube-controller-manager", &b.controllerManager},
		{"kube-scheduler", &b.scheduler}, {"kubelet", &b.kubelet}, {"kube-proxy", &b.kubeProxy}, {"kubectl", &b.kubectl},
		{"containerd", &b.containerd}, {"ctr", &b.ctr}, {"iptables", &b.iptables}, {"ip", &b.ip},
	} {
		p, err := tools.Lookup(x.name)
		if err != nil {
			errs = append(errs, err)
		}
		*x.dst = p
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		errs = append(errs, fmt.Errorf("the CNI plugins are missing (/usr/lib/cni/bridge); install them with: %s (or apt-get install -y containernetworking-plugins)", tools.SetupHint))
	}
	if _, err := tools.Lookup("runc"); err != nil {
		errs = append(errs, err)
	}
	return b, errors.Join(errs...)
}

// runningComponents lists the components recorded in dir that still run.
func runningComponents(dir string) []string {
	var out []string
	for _, n := range components {
		if p, err := proc.ReadPid(filepath.Join(dir, "pids", n+".pid")); err == nil && p.Alive() {
			out = append(out, n+" "+strconv.Itoa(p.Pid))
		}
	}
	return out
}

// state is what Down needs to undo a run, saved as state.json in the state directory.
type state struct {
	Dir string `json:"dir"`
	// Outside are the hard-coded paths outside Dir, each with whether it existed before.
	Outside []outsidePath `json:"outside"`
	// Sysctls are the values before Start, restored by Down.
	Sysctls map[string]string `json:"sysctls"`
}

func (s state) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return proc.WriteFileAtomic(filepath.Join(s.Dir, "state.json"), b, 0o644)
}

func loadState(dir string) (state, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return state{}, err
	}
	var s state
	return s, json.Unmarshal(b, &s)
}

// stopGrace is how long Down lets a component exit on SIGTERM before SIGKILL.
func stopGrace(name string) time.Duration {
	switch name {
	case "kube-apiserver", "etcd", "containerd":
		return 15 * time.Second
	default:
		return 5 * time.Second
	}
}
