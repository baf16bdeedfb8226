package render

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
	"github.com/qwenops/qwen-operator/internal/ratelimit"
)

// TestEnumCopiesNameTheSameValues: the renderer turns the API's enums into the gateway
// config's, and the gateway turns the config's algorithm into internal/ratelimit's, by plain
// type conversions. That is only right while every copy names the same values, the CRD schema
// allows exactly those, and the gateway config and the limiter accept each of them.
func TestEnumCopiesNameTheSameValues(t *testing.T) {
	spec := crdSpecSchema(t, "serving.qwenops.io_ratelimitpolicies.yaml")
	for _, tc := range []struct {
		field  []string // path of the enum in the spec schema
		copies map[string][]string
		// accepted sets the value on a gateway config's rate limit.
		accepted func(rl *gatewayconfig.RateLimit, v string)
	}{
		{
			field: []string{"mode"},
			copies: map[string][]string{
				"api":           names(v1alpha1.ModeEnforce, v1alpha1.ModeShadow),
				"gatewayconfig": names(gatewayconfig.ModeEnforce, gatewayconfig.ModeShadow),
			},
			accepted: func(rl *gatewayconfig.RateLimit, v string) { rl.Mode = gatewayconfig.Mode(v) },
		},
		{
			field: []string{"key", "source"},
			copies: map[string][]string{
				"api":           names(v1alpha1.KeyAPIKey, v1alpha1.KeyClientIP, v1alpha1.KeyHeader),
				"gatewayconfig": names(gatewayconfig.KeyAPIKey, gatewayconfig.KeyClientIP, gatewayconfig.KeyHeader),
			},
			accepted: func(rl *gatewayconfig.RateLimit, v string) {
				rl.Key = gatewayconfig.Key{Source: gatewayconfig.KeySource(v), Header: "X-User-Id"}
				if rl.Key.Source != gatewayconfig.KeyHeader {
					rl.Key.Header = ""
				}
			},
		},
		{
			field: []string{"algorithm"},
			copies: map[string][]string{
				"api": names(v1alpha1.AlgorithmTokenBucket, v1alpha1.AlgorithmSlidingWindow, v1alpha1.AlgorithmSlidingLog, v1alpha1.AlgorithmFixedWindow,
					v1alpha1.AlgorithmLeakyBucket, v1alpha1.AlgorithmHybrid),
				"gatewayconfig": names(gatewayconfig.TokenBucket, gatewayconfig.SlidingWindow, gatewayconfig.SlidingLog, gatewayconfig.FixedWindow,
					gatewayconfig.LeakyBucket, gatewayconfig.Hybrid),
				"ratelimit": names(ratelimit.TokenBucket, ratelimit.SlidingWindow, ratelimit.SlidingLog, ratelimit.FixedWindow,
					ratelimit.LeakyBucket, ratelimit.Hybrid),
			},
			accepted: func(rl *gatewayconfig.RateLimit, v string) { rl.Algorithm = gatewayconfig.Algorithm(v) },
		},
		{
			field: []string{"failureMode"},
			copies: map[string][]string{
				"api":           names(v1alpha1.FailOpen, v1alpha1.FailClosed),
				"gatewayconfig": names(gatewayconfig.FailOpen, gatewayconfig.FailClosed),
			},
			accepted: func(rl *gatewayconfig.RateLimit, v string) { rl.FailureMode = gatewayconfig.FailureMode(v) },
		},
	} {
		schema := enumAt(t, spec, tc.field)
		for pkg, values := range tc.copies {
			if !slices.Equal(sorted(values), schema) {
				t.Errorf("spec.%v: the CRD schema allows %v, %s names %v", tc.field, schema, pkg, sorted(values))
			}
		}
		for _, v := range schema {
			c := &gatewayconfig.Config{Upstream: gatewayconfig.Upstream{URL: "http://engine:8000", Model: "m"},
				RateLimit: &gatewayconfig.RateLimit{Policy: "p"}}
			tc.accepted(c.RateLimit, v)
			c.Default()
			if err := c.Validate(); err != nil {
				t.Errorf("spec.%v %q: the gateway config refuses it: %v", tc.field, v, err)
			}
			if tc.field[0] == "algorithm" {
				r := ratelimit.Rule{Algorithm: ratelimit.Algorithm(v), Limit: 30, Window: time.Minute}
				if err := r.Validate(); err != nil {
					t.Errorf("algorithm %q: internal/ratelimit refuses it: %v", v, err)
				}
			}
		}
	}
}

func names[T ~string](vs ...T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// crdSpecSchema is the openAPIV3Schema of spec of a generated CRD in config/crd/bases.
func crdSpecSchema(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", file))
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &crd); err != nil || len(crd.Spec.Versions) != 1 {
		t.Fatalf("%s: %v (%d versions)", file, err, len(crd.Spec.Versions))
	}
	return property(t, crd.Spec.Versions[0].Schema.OpenAPIV3Schema, []string{"spec"})
}

// enumAt is the sorted enum of the property at path below schema.
func enumAt(t *testing.T, schema map[string]any, path []string) []string {
	t.Helper()
	var out []string
	for _, v := range property(t, schema, path)["enum"].([]any) {
		out = append(out, v.(string))
	}
	return sorted(out)
}

func property(t *testing.T, schema map[string]any, path []string) map[string]any {
	t.Helper()
	node := schema
	for _, p := range path {
		props, _ := node["properties"].(map[string]any)
		next, ok := props[p].(map[string]any)
		if !ok {
			t.Fatalf("no property %v in the schema", path)
		}
		node = next
	}
	return node
}
