package render

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCases cover VLLM, SGLang and Simulator; with and without fallback; Ingress,
// HTTPRoute (with and without the BackendTrafficPolicy CRD) and none; with and without Redis
// and API keys.
var goldenCases = map[string]func() Inputs{
	"vllm-full":         fullVLLM,
	"vllm-minimal":      minimalVLLM,
	"sglang-httproute":  sglangRoute,
	"simulator-exposed": simulatorBoth,
}

func TestGolden(t *testing.T) {
	for name, in := range goldenCases {
		t.Run(name, func(t *testing.T) {
			got := renderYAML(t, in())
			path := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test ./internal/render -update` to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("render differs from %s (rerun with -update if intended):\n%s", path, diff(string(want), string(got)))
			}
		})
	}
}

// TestGoldenGatewayConfigLoads checks that every rendered gateway ConfigMap is a config the
// gateway accepts: gatewayconfig.Load parses strictly, defaults and validates.
func TestGoldenGatewayConfigLoads(t *testing.T) {
	for name, in := range goldenCases {
		t.Run(name, func(t *testing.T) {
			objs, err := Render(in())
			if err != nil {
				t.Fatal(err)
			}
			raw := configOf(t, objs)
			if _, err := gatewayconfig.Load([]byte(raw)); err != nil {
				t.Fatalf("gateway refuses the rendered config: %v\n%s", err, raw)
			}
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	for name, in := range goldenCases {
		first := renderYAML(t, in())
		for i := 0; i < 20; i++ {
			if again := renderYAML(t, in()); !bytes.Equal(first, again) {
				t.Fatalf("%s: render %d differs from the first:\n%s", name, i, diff(string(first), string(again)))
			}
		}
	}
}

// renderYAML renders in as the multi-document YAML that would be applied.
func renderYAML(t *testing.T, in Inputs) []byte {
	t.Helper()
	objs, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for i, o := range objs {
		u, err := ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes()
}
