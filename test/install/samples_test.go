package install

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSamplesApplyAsTheREADMESays runs the README's commands for the samples, as typed (from
// the repository root), against the test API server: every kubectl command that names
// config/samples must apply the three samples, and `kubectl get qs,rlp,dp` must list them.
func TestSamplesApplyAsTheREADMESays(t *testing.T) {
	b, err := os.ReadFile(repoPath(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := regexp.MustCompile("(?m)^kubectl apply [^#\n]*config/samples[^#\n]*").FindAllString(string(b), -1)
	if len(cmds) == 0 {
		t.Fatal("README.md has no kubectl apply of config/samples")
	}
	for i, line := range cmds {
		args := strings.Fields(line)[1:]
		ns := "default"
		for j, a := range args {
			if a == "config/samples" || a == "config/samples/" {
				args[j] = repoPath(t, a)
			}
			if a == "-n" && j+1 < len(args) {
				ns = args[j+1]
			}
		}
		if ns != "default" {
			createNamespace(t, ns)
		}
		t.Logf("README command %d: %s", i+1, line)
		out := kubectl(t, nil, args...)
		for _, want := range []string{"qwenservice.serving.qwenops.io/qwen3", "ratelimitpolicy.serving.qwenops.io/qwen3-limits", "degradationplan.serving.qwenops.io/qwen3-degrade"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %s:\n%s", line, want, out)
			}
		}
		got := kubectl(t, nil, "get", "qs,rlp,dp", "-n", ns, "-o", "name")
		if strings.Count(got, "\n") != 3 {
			t.Errorf("kubectl get qs,rlp,dp -n %s after %q:\n%s", ns, line, got)
		}
	}
}
