package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// setupNetwork gives the node its address and routes the Service range locally:
//   - NodeIP/32 on NodeBridge, a bridge with no ports (this kernel has no dummy links, and the
//     kubelet refuses a loopback node IP); traffic to it is local delivery;
//   - ServiceCIDR routed to NodeBridge, so a ClusterIP that kube-proxy has not programmed yet is
//     dropped here instead of leaving through the default route;
//   - bridged traffic through iptables (pod → Service → pod on one bridge) and forwarding.
//
// The pod bridge itself is created by the CNI bridge plugin.
func (c *Cluster) setupNetwork() error {
	ip := func(args ...string) error {
		if out, err := exec.Command(c.bins.ip, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if exec.Command(c.bins.ip, "link", "show", NodeBridge).Run() != nil {
		if err := ip("link", "add", NodeBridge, "type", "bridge"); err != nil {
			return err
		}
	}
	if err := ip("addr", "replace", NodeIP+"/32", "dev", NodeBridge); err != nil {
		return err
	}
	if err := ip("link", "set", NodeBridge, "up"); err != nil {
		return err
	}
	if err := ip("route", "replace", ServiceCIDR, "dev", NodeBridge); err != nil {
		return err
	}
	// br_netfilter makes the bridge-nf sysctl exist.
	_ = exec.Command("modprobe", "br_netfilter").Run()
	for _, kv := range [][2]string{{"net.bridge.bridge-nf-call-iptables", "1"}, {"net.ipv4.ip_forward", "1"}} {
		if err := writeSysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// sysctls the node's components may change (the kubelet sets the vm and kernel ones); Down
// restores each to its value before Start.
var sysctls = []string{
	"net.bridge.bridge-nf-call-iptables", "net.ipv4.ip_forward", "net.ipv4.conf.all.route_localnet",
	"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
	"kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
}

func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}

func readSysctls() (map[string]string, error) {
	out := map[string]string{}
	for _, n := range sysctls {
		b, err := os.ReadFile(sysctlPath(n))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[n] = strings.TrimSpace(string(b))
	}
	return out, nil
}

func writeSysctl(name, value string) error {
	if err := os.WriteFile(sysctlPath(name), []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// removeNetwork deletes the pod bridge's veths, both bridges (with the node address and the
// Service route) and the iptables rules and chains of kube-proxy, the kubelet and CNI.
func removeNetwork(ipBin, iptablesBin, kubeProxy string) []error {
	var errs []error
	if out, err := exec.Command(ipBin, "-o", "link", "show", "master", PodBridge).Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			// "12: vethabc@if3: <...> ..." → vethabc
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			_ = exec.Command(ipBin, "link", "del", name).Run()
		}
	}
	for _, br := range []string{PodBridge, NodeBridge} {
		if exec.Command(ipBin, "link", "show", br).Run() == nil {
			if out, err := exec.Command(ipBin, "link", "del", br).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip link del %s: %v: %s", br, err, out))
			}
		}
	}
	if kubeProxy != "" {
		_ = exec.Command(kubeProxy, "--cleanup").Run()
	}
	for _, bin := range []string{iptablesBin, strings.Replace(iptablesBin, "iptables", "ip6tables", 1)} {
		if _, err := os.Stat(bin); err != nil {
			continue
		}
		errs = append(errs, removeChains(bin)...)
	}
	return errs
}

// ourChain reports whether an iptables chain belongs to the node: kube-proxy and the kubelet
// name theirs KUBE-*, the CNI plugins CNI-*. Nothing else on these machines runs either.
func ourChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "CNI-")
}

// removeChains deletes, in every table, the rules that jump to our chains from other chains,
// then flushes and deletes our chains.
func removeChains(iptables string) []error {
	var errs []error
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		out, err := exec.Command(iptables, "-w", "-t", table, "-S").Output()
		if err != nil {
			continue // the table may not exist
		}
		var ours []string
		for _, line := range strings.Split(string(out), "\n") {
			args := splitRule(line)
			if len(args) < 2 {
				continue
			}
			switch args[0] {
			case "-N":
				if ourChain(args[1]) {
					ours = append(ours, args[1])
				}
			case "-A":
				if ourChain(args[1]) || !jumpsToOurs(args) {
					continue
				}
				del := append([]string{"-w", "-t", table, "-D"}, args[1:]...)
				if out, err := exec.Command(iptables, del...).CombinedOutput(); err != nil {
					errs = append(errs, fmt.Errorf("%s %s: %v: %s", iptables, strings.Join(del, " "), err, out))
				}
			}
		}
		for _, ch := range ours {
			_ = exec.Command(iptables, "-w", "-t", table, "-F", ch).Run()
		}
		for _, ch := range ours {
			if out, err := exec.Command(iptables, "-w", "-t", table, "-X", ch).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s -X %s: %v: %s", iptables, table, ch, err, out))
			}
		}
	}
	return errs
}

func jumpsToOurs(args []string) bool {
	for i := 0; i+1 < len(args); i++ {
		if (args[i] == "-j" || args[i] == "-g") && ourChain(args[i+1]) {
			return true
		}
	}
	return false
}

// splitRule splits an `iptables -S` line into arguments, honouring double quotes.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case ch == '"':
			inQuote, have = !inQuote, true
		case ch == ' ' && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}
