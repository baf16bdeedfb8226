package render

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// A golden case is a pair of files in testdata/: NAME.in.yaml holds the inputs (goldenInput)
// and NAME.golden.yaml the objects Render makes of them, as the YAML documents that would be
// applied. Adding a case is adding an .in.yaml file and running
// `go test ./internal/render -run TestGolden -update`.

// goldenInput is the content of an .in.yaml file: the objects as the API server returns them
// (defaults filled, a policy's status as its controller wrote it), and what the API server
// serves. The images come from testDefaults.
type goldenInput struct {
	Service                    *v1alpha1.QwenService     `json:"service"`
	Policy                     *v1alpha1.RateLimitPolicy `json:"policy,omitempty"`
	Plan                       *v1alpha1.DegradationPlan `json:"plan,omitempty"`
	HTTPRouteServed            bool                      `json:"httpRouteServed,omitempty"`
	BackendTrafficPolicyServed bool                      `json:"backendTrafficPolicyServed,omitempty"`
	// FallbackUnavailable: the fallback Service has no ready endpoints.
	FallbackUnavailable bool `json:"fallbackUnavailable,omitempty"`
}

// testDefaults are the images of every golden case.
var testDefaults = Defaults{
	VLLMImage:      "vllm/vllm-openai:v0.11.0",
	SGLangImage:    "lmsysorg/sglang:v0.5.4",
	SimulatorImage: "ghcr.io/llm-d/llm-d-inference-sim:v0.10.2",
	GatewayImage:   "ghcr.io/qwenops/qwen-gateway:test",
}

// input reads testdata/NAME.in.yaml; each call returns a fresh copy to mutate.
func input(t testing.TB, name string) Inputs {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var g goldenInput
	if err := yaml.UnmarshalStrict(b, &g); err != nil {
		t.Fatalf("%s.in.yaml: %v", name, err)
	}
	if g.Service == nil {
		t.Fatalf("%s.in.yaml: no service", name)
	}
	return Inputs{Service: g.Service, Policy: g.Policy, Plan: g.Plan, Defaults: testDefaults,
		HTTPRouteServed: g.HTTPRouteServed, BackendTrafficPolicyServed: g.BackendTrafficPolicyServed,
		FallbackUnavailable: g.FallbackUnavailable}
}

// goldenCases are the names of the .in.yaml files; every .golden.yaml must have one.
func goldenCases(t testing.TB) []string {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs in testdata/ (%v)", err)
	}
	var names []string
	for _, in := range ins {
		names = append(names, strings.TrimSuffix(filepath.Base(in), ".in.yaml"))
	}
	outs, _ := filepath.Glob(filepath.Join("testdata", "*.golden.yaml"))
	for _, out := range outs {
		if _, err := os.Stat(strings.TrimSuffix(out, ".golden.yaml") + ".in.yaml"); err != nil {
			t.Errorf("%s has no .in.yaml: delete it or add its input", out)
		}
	}
	return names
}

func TestGolden(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			got := renderYAML(t, input(t, name))
			path := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test ./internal/render -run TestGolden -update` to create it)", err)
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
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			objs, err := Render(input(t, name))
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
	for _, name := range goldenCases(t) {
		first := renderYAML(t, input(t, name))
		for i := 0; i < 20; i++ {
			if again := renderYAML(t, input(t, name)); !bytes.Equal(first, again) {
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
