package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// startContainerd starts the node's containerd and imports the images into its k8s.io
// namespace (the one CRI uses).
func (c *Cluster) startContainerd(ctx context.Context) error {
	sock := c.ContainerdSocket()
	err := c.spawn(ctx, "containerd", []string{c.bins.containerd, "--config", c.path("config", "containerd.toml"), "--log-level", "info"},
		30*time.Second, func(ctx context.Context) error {
			return exec.CommandContext(ctx, c.bins.ctr, "-a", sock, "version").Run()
		})
	if err != nil {
		return err
	}
	for _, img := range c.opts.Images {
		out, err := exec.CommandContext(ctx, c.bins.ctr, "-a", sock, "-n", "k8s.io", "images", "import", img).CombinedOutput()
		if err != nil {
			return fmt.Errorf("importing %s into containerd: %v\n%s", img, err, out)
		}
	}
	return nil
}

// startControlPlane starts etcd and the API server, then the controller-manager and the
// scheduler.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	loop := func(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
	err := c.spawn(ctx, "etcd", []string{c.bins.etcd, "--name", "qwen", "--data-dir", c.path("etcd-data"),
		"--listen-client-urls", loop(etcdClientPort), "--advertise-client-urls", loop(etcdClientPort),
		"--listen-peer-urls", loop(etcdPeerPort), "--initial-advertise-peer-urls", loop(etcdPeerPort),
		"--initial-cluster", "qwen=" + loop(etcdPeerPort), "--listen-metrics-urls", loop(etcdMetricsPort),
		"--log-level", "warn"}, 60*time.Second, httpOK(http.DefaultClient, loop(etcdMetricsPort)+"/health"))
	if err != nil {
		return err
	}
	admin, err := c.adminHTTPClient()
	if err != nil {
		return err
	}
	p := func(f string) string { return c.path("pki", f) }
	err = c.spawn(ctx, "kube-apiserver", []string{c.bins.apiserver,
		"--etcd-servers=" + loop(etcdClientPort),
		"--bind-address=" + NodeIP, "--advertise-address=" + NodeIP, "--secure-port=" + strconv.Itoa(APIPort),
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--tls-cert-file=" + p("apiserver.crt"), "--tls-private-key-file=" + p("apiserver.key"),
		"--client-ca-file=" + p("ca.crt"),
		"--kubelet-client-certificate=" + p("apiserver-kubelet-client.crt"), "--kubelet-client-key=" + p("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority=" + p("ca.crt"), "--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p("sa.pub"), "--service-account-signing-key-file=" + p("sa.key"),
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--anonymous-auth=false", "--profiling=false", "--v=1",
	}, 3*time.Minute, httpOK(admin, c.APIServerURL()+"/readyz"))
	if err != nil {
		return err
	}
	k := func(f string) string { return c.path("kubeconfigs", f+".kubeconfig") }
	loopbackTLS := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // our own components' self-signed health endpoints on 127.0.0.1
	err = c.spawn(ctx, "kube-controller-manager", []string{c.bins.controllerManager,
		"--kubeconfig=" + k("controller-manager"),
		"--authentication-kubeconfig=" + k("controller-manager"), "--authorization-kubeconfig=" + k("controller-manager"),
		"--bind-address=127.0.0.1", "--leader-elect=false",
		"--service-account-private-key-file=" + p("sa.key"), "--root-ca-file=" + p("ca.crt"), "--use-service-account-credentials=true",
		"--cluster-signing-cert-file=" + p("ca.crt"), "--cluster-signing-key-file=" + p("ca.key"),
		"--service-cluster-ip-range=" + ServiceCIDR, "--allocate-node-cidrs=false", "--v=1",
	}, time.Minute, httpOK(loopbackTLS, "https://127.0.0.1:10257/healthz"))
	if err != nil {
		return err
	}
	return c.spawn(ctx, "kube-scheduler", []string{c.bins.scheduler,
		"--kubeconfig=" + k("scheduler"),
		"--authentication-kubeconfig=" + k("scheduler"), "--authorization-kubeconfig=" + k("scheduler"),
		"--bind-address=127.0.0.1", "--leader-elect=false", "--v=1",
	}, time.Minute, httpOK(loopbackTLS, "https://127.0.0.1:10259/healthz"))
}

// startNode starts the kubelet and kube-proxy.
func (c *Cluster) startNode(ctx context.Context) error {
	err := c.spawn(ctx, "kubelet", []string{c.bins.kubelet,
		"--config=" + c.path("config", "kubelet.yaml"), "--kubeconfig=" + c.path("kubeconfigs", "kubelet.kubeconfig"),
		"--root-dir=" + c.path("kubelet"), "--hostname-override=" + NodeName, "--node-ip=" + NodeIP, "--v=1",
	}, time.Minute, httpOK(http.DefaultClient, "http://127.0.0.1:10248/healthz"))
	if err != nil {
		return err
	}
	return c.spawn(ctx, "kube-proxy", []string{c.bins.kubeProxy, "--config=" + c.path("config", "kube-proxy.yaml"), "--v=1"},
		time.Minute, func(ctx context.Context) error {
			// /healthz answers (200 or 503) once kube-proxy serves; it turns 200 after the first sync.
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:10256/healthz", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		})
}

// Clientset returns an administrator's clientset.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	return kubernetes.NewForConfig(cfg)
}

// waitNode waits until the node is Ready, advertises gpus nvidia.com/gpu (patched into its
// status: extended resources are not managed by the kubelet) and the default ServiceAccount
// exists.
func (c *Cluster) waitNode(ctx context.Context, gpus int) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := poll(ctx, "node "+NodeName+" Ready", func(ctx context.Context) error {
		n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("not Ready: %v", n.Status.Conditions)
	}); err != nil {
		return err
	}
	if err := c.SetGPUs(ctx, gpus); err != nil {
		return fmt.Errorf("advertising %s: %w", GPUResource, err)
	}
	return poll(ctx, "default ServiceAccount", func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// GPUResource is the extended resource the node advertises.
const GPUResource corev1.ResourceName = "nvidia.com/gpu"

// SetGPUs changes how many GPUs the node advertises and waits until the kubelet has made
// them allocatable (its next node status update, up to ~10s later), so the scheduler sees
// them once SetGPUs returns.
func (c *Cluster) SetGPUs(ctx context.Context, gpus int) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	patch := fmt.Sprintf(`{"status":{"capacity":{%q:%q}}}`, GPUResource, strconv.Itoa(gpus))
	if _, err = cs.CoreV1().Nodes().Patch(ctx, NodeName, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return poll(ctx, fmt.Sprintf("%d allocatable %s", gpus, GPUResource), func(ctx context.Context) error {
		n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if q, ok := n.Status.Allocatable[GPUResource]; !ok || q.Value() != int64(gpus) {
			return fmt.Errorf("allocatable %v", n.Status.Allocatable)
		}
		return nil
	})
}

// adminHTTPClient authenticates as the administrator and trusts the cluster's CA.
func (c *Cluster) adminHTTPClient() (*http.Client, error) {
	ca, err := os.ReadFile(c.path("pki", "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(c.path("pki", "admin.crt"), c.path("pki", "admin.key"))
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}, nil
}

// httpOK checks that GET url answers 200.
func httpOK(client *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// poll calls check every 250ms until it succeeds or ctx ends.
func poll(ctx context.Context, what string, check func(context.Context) error) error {
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %v", what, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// LogTails returns the last n lines of each component's log, for error messages.
func (c *Cluster) LogTails(n int) string {
	var b strings.Builder
	for _, name := range components {
		data, err := os.ReadFile(c.LogPath(name))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "--- %s (%s), last lines:\n%s\n", name, c.LogPath(name), strings.Join(lines, "\n"))
	}
	return b.String()
}
