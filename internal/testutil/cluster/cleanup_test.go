package cluster

import (
	"reflect"
	"testing"
)

func TestSplitRule(t *testing.T) {
	for line, want := range map[string][]string{
		`-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS`: {"-A", "INPUT", "-m", "comment", "--comment", "kubernetes health check service ports", "-j", "KUBE-NODEPORTS"},
		`-N CNI-FORWARD`:             {"-N", "CNI-FORWARD"},
		`-A X --comment "a \"q\" b"`: {"-A", "X", "--comment", `a "q" b`},
		``:                           nil,
	} {
		if got := splitRule(line); !reflect.DeepEqual(got, want) {
			t.Errorf("splitRule(%q) = %q, want %q", line, got, want)
		}
	}
	if !jumpsToOurs(splitRule(`-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD`)) {
		t.Error("a jump to CNI-FORWARD is ours")
	}
	if jumpsToOurs(splitRule(`-A FORWARD -j DOCKER-USER`)) {
		t.Error("docker's chain is not ours")
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/tmp/a\040b/c`); got != "/tmp/a b/c" {
		t.Errorf("got %q", got)
	}
}

func TestShimSocket(t *testing.T) {
	// containerd 1.6: /run/containerd/s/ + sha256("<address>/<namespace>/<id>").
	got := shimSocket("/tmp/qwen-cluster/containerd/containerd.sock", "abc")
	if len(got) != len("/run/containerd/s/")+64 {
		t.Errorf("got %q", got)
	}
}
