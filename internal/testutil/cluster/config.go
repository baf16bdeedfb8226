package cluster

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeConfigs writes the kubeconfigs and the configuration files of containerd, CNI, the
// kubelet and kube-proxy under the state directory (REAL-NODE.md has the reasons for each
// setting).
func (c *Cluster) writeConfigs() error {
	for _, d := range []string{"config/cni", "kubeconfigs", "cni/ipam", "pod-logs", "kubelet", "containerd"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"config/containerd.toml":      c.containerdConfig(),
		"config/cni/10-qwen.conflist": c.cniConfig(),
		"config/kubelet.yaml":         c.kubeletConfig(),
		"config/kube-proxy.yaml":      c.kubeProxyConfig(),
		// Pods with dnsPolicy Default get this resolv.conf: no name server outside the node.
		"config/resolv.conf": "nameserver " + DNSServiceIP + "\noptions ndots:1\n",
	}
	for _, id := range identities() {
		if id.kubecf != "" {
			files["kubeconfigs/"+id.kubecf+".kubeconfig"] = c.kubeconfig(id.kubecf, id.file)
		}
	}
	for name, content := range files {
		if err := os.WriteFile(c.path(name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// kubeconfig names user with the certificate pki/<cert>.crt.
func (c *Cluster) kubeconfig(user, cert string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: qwen
  cluster:
    server: %[1]s
    certificate-authority: %[2]s
users:
- name: %[3]s
  user:
    client-certificate: %[4]s.crt
    client-key: %[4]s.key
contexts:
- name: qwen
  context: {cluster: qwen, user: %[3]s}
current-context: qwen
`, c.APIServerURL(), c.path("pki/ca.crt"), user, c.path("pki", cert))
}

func (c *Cluster) containerdConfig() string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
# keep this instance away from docker's containerd and any system one
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  address = ""
[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %[5]q
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = %[6]q
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    # pod netns bind mounts under the state directory instead of /var/run/netns
    netns_mounts_under_state_dir = true
    # no CAP_SYS_RESOURCE here: runc cannot lower oom_score_adj (the kubelet asks -998 for
    # sandboxes), so clamp every container's oom_score_adj to containerd's own
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = %[7]q
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = %[8]q
      max_conf_num = 1
`, c.path("containerd/root"), c.path("containerd/state"), c.ContainerdSocket(), c.ContainerdSocket()+".ttrpc",
		c.path("containerd/opt"), c.opts.PauseImage, c.path("containerd/runc"), c.path("config/cni"))
}

func (c *Cluster) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %[1]q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %[2]q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %[3]q,
        "ranges": [[{"subnet": %[4]q, "gateway": %[5]q}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall", "backend": "iptables"}
  ]
}
`, cniNetwork, PodBridge, c.path("cni/ipam"), PodCIDR, PodGateway)
}

func (c *Cluster) kubeletConfig() string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 host: kubelet >= 1.35 refuses to start unless this is false
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%[1]s
address: %[2]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %[3]s
tlsPrivateKeyFile: %[4]s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[5]s}
authorization:
  mode: Webhook
podLogsDir: %[6]s
clusterDomain: cluster.local
clusterDNS: [%[7]s]
resolvConf: %[8]s
failSwapOn: false
podCIDR: %[9]s
maxPods: 40
serializeImagePulls: false
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "2%%"
  imagefs.available: "2%%"
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
`, c.ContainerdSocket(), NodeIP, c.path("pki/kubelet-serving.crt"), c.path("pki/kubelet-serving.key"), c.path("pki/ca.crt"),
		c.path("pod-logs"), DNSServiceIP, c.path("config/resolv.conf"), PodCIDR)
}

func (c *Cluster) kubeProxyConfig() string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: %[1]s
hostnameOverride: %[2]s
bindAddress: %[3]s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: %[4]s
detectLocalMode: ClusterCIDR
nodePortAddresses: ["%[3]s/32"]
conntrack:
  maxPerCore: 0
`, c.path("kubeconfigs/kube-proxy.kubeconfig"), NodeName, NodeIP, PodCIDR)
}

func (c *Cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.Dir}, parts...)...)
}
