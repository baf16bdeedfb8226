package install

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

// TestChartSchemaRefuses checks that values.schema.json refuses wrong types, unknown keys and
// malformed values before anything renders, naming the value.
func TestChartSchemaRefuses(t *testing.T) {
	for set, want := range map[string]string{
		"replicaCount=two":                           "/replicaCount': got string, want integer",
		"replicas=2":                                 "additional properties 'replicas' not allowed",
		"serviceMonitor.enable=true":                 "additional properties 'enable' not allowed",
		"image.digest=sha256:abc":                    "/image/digest'",
		"metrics.port=0":                             "/metrics/port'",
		"leaderElection.enabled=yes":                 "/leaderElection/enabled': got string, want boolean",
		"podMonitor.components={gateway,router}":     "/podMonitor/components/1'",
		"serviceMonitor.interval=soon":               "/serviceMonitor/interval'",
		"metrics.readerSubjects[0].kind=Robot":       "/metrics/readerSubjects/0/kind'",
		"prometheus.url=prometheus.monitoring:9090":  "/prometheus/url'",
		"kubeAPI.qps=0":                              "/kubeAPI/qps'",
		"kubeAPI.burst=0":                            "/kubeAPI/burst'",
		"qwenServiceWorkers=0":                       "/qwenServiceWorkers'",
		"redis.image.pullPolicy=Sometimes":           "/redis/image/pullPolicy'",
		"grafanaDashboard.labels.grafana_dashboard=": "", // an empty label value is fine
	} {
		out, err := helmRun(t, "template", "q", chartDir, "--set", set)
		if want == "" {
			if err != nil {
				t.Errorf("--set %s: %v\n%s", set, err, out)
			}
			continue
		}
		if err == nil || !strings.Contains(out, "values don't meet the specifications of the schema") || !strings.Contains(out, want) {
			t.Errorf("--set %s: err %v, want the schema to refuse it with %q:\n%.600s", set, err, want, out)
		}
	}
}

// TestChartSchemaCoversValues checks that values.schema.json describes exactly the keys of
// values.yaml (plus Helm's global), with the type of each default, and refuses unknown keys at
// every level it describes.
func TestChartSchemaCoversValues(t *testing.T) {
	b, err := os.ReadFile(repoPath(t, chartDir+"/values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema jsonSchema
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	b, err = os.ReadFile(repoPath(t, chartDir+"/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, s jsonSchema, v map[string]any)
	walk = func(path string, s jsonSchema, v map[string]any) {
		if s.AdditionalProperties == nil || *s.AdditionalProperties {
			t.Errorf("schema %s allows unknown keys (additionalProperties: false is missing)", path)
		}
		for k := range s.Properties {
			if _, ok := v[k]; !ok && !(path == "" && k == "global") {
				t.Errorf("schema describes %s%s, which values.yaml does not have", path, k)
			}
		}
		for k, val := range v {
			sub, ok := s.Properties[k]
			if !ok {
				t.Errorf("values.yaml has %s%s, which the schema does not describe", path, k)
				continue
			}
			if sub.Description == "" {
				t.Errorf("schema %s%s has no description", path, k)
			}
			if want := jsonType(val); sub.Type != "" && sub.Type != want && !(sub.Type == "integer" && want == "number") {
				t.Errorf("schema %s%s is a %s, its default %v a %s", path, k, sub.Type, val, want)
			}
			if m, ok := val.(map[string]any); ok && len(sub.Properties) > 0 {
				walk(path+k+".", sub, m)
			}
		}
	}
	walk("", schema, values)
}

// jsonSchema is the part of a JSON schema the coverage test reads.
type jsonSchema struct {
	Type                 string                `json:"type"`
	Description          string                `json:"description"`
	Properties           map[string]jsonSchema `json:"properties"`
	AdditionalProperties *bool                 `json:"-"`
}

func (s *jsonSchema) UnmarshalJSON(b []byte) error {
	type plain jsonSchema
	var raw struct {
		plain
		AdditionalProperties json.RawMessage `json:"additionalProperties"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*s = jsonSchema(raw.plain)
	if string(raw.AdditionalProperties) == "false" {
		s.AdditionalProperties = new(bool)
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64, int64, int:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// TestChartGuards checks the render refuses settings that cannot work, with a message that
// says what to change: more than one manager without leader election, and a Kubernetes older
// than Chart.yaml's kubeVersion.
func TestChartGuards(t *testing.T) {
	out, err := helmRun(t, "template", "q", chartDir, "--set", "replicaCount=2", "--set", "leaderElection.enabled=false")
	if err == nil || !strings.Contains(out, "replicaCount is 2 but leaderElection.enabled is false") {
		t.Errorf("two replicas without leader election: err %v\n%s", err, out)
	}
	objs := objects(t, renderChart(t, chartDir, "q", "x", "--set", "replicaCount=3"))
	if d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "q-qwen-operator")); *d.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", *d.Spec.Replicas)
	}
	if out, err := helmRun(t, "template", "q", repoPath(t, chartDir), "--kube-version", "v1.30.4"); err == nil || !strings.Contains(out, "incompatible with Kubernetes v1.30.4") {
		t.Errorf("Kubernetes 1.30: err %v\n%s", err, out)
	}
}

// TestChartImageDigests checks that a digest pins each image the chart names.
func TestChartImageDigests(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	objs := objects(t, renderChart(t, chartDir, "qwen-operator", "x", "--set", "image.digest="+digest,
		"--set", "gatewayImage.digest="+digest, "--set", "redis.enabled=true", "--set", "redis.image.digest="+digest))
	mgr := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "qwen-operator")).Spec.Template.Spec.Containers[0]
	if mgr.Image != "ghcr.io/qwenops/qwen-operator@"+digest || !slices.Contains(mgr.Args, "--gateway-image=ghcr.io/qwenops/qwen-gateway@"+digest) {
		t.Errorf("manager image %s, args %v", mgr.Image, mgr.Args)
	}
	if test := convert[corev1.Pod](t, find(t, objs, "Pod", "qwen-operator-test")); test.Spec.Containers[0].Image != mgr.Image {
		t.Errorf("helm test image %s, want the manager's %s", test.Spec.Containers[0].Image, mgr.Image)
	}
	if r := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "qwen-operator-redis")); r.Spec.Template.Spec.Containers[0].Image != "redis@"+digest {
		t.Errorf("redis image %s", r.Spec.Template.Spec.Containers[0].Image)
	}
}

// TestChartPodMonitorSelectsTheWorkloads renders the sample QwenService with the operator's own
// renderer and checks the chart's PodMonitor selects its gateway, engine and fallback pods (and
// nothing else it renders) on a container port that exists, and the helm test Pod runs the
// manager's probe as the manager's ServiceAccount.
func TestChartPodMonitorSelectsTheWorkloads(t *testing.T) {
	objs := objects(t, renderChart(t, chartDir, "qwen-operator", "x", "--set", "podMonitor.enabled=true"))
	var pm struct {
		Spec struct {
			Selector            metav1.LabelSelector `json:"selector"`
			PodMetricsEndpoints []struct {
				Port string `json:"port"`
			} `json:"podMetricsEndpoints"`
		} `json:"spec"`
	}
	b, _ := json.Marshal(find(t, objs, "PodMonitor", "qwen-operator-workloads").Object)
	if err := json.Unmarshal(b, &pm); err != nil {
		t.Fatal(err)
	}
	sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	var qs v1alpha1.QwenService
	b, err = os.ReadFile(repoPath(t, "config/samples/serving_v1alpha1_qwenservice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &qs); err != nil {
		t.Fatal(err)
	}
	qs.Namespace, qs.UID = "ai", types.UID("8d0c1b2e-0000-4000-8000-000000000001")
	children, err := render.Render(render.Inputs{Service: &qs, Defaults: render.Defaults{GatewayImage: "gw", VLLMImage: "vllm"}})
	if err != nil {
		t.Fatal(err)
	}
	selected := map[string]bool{}
	for _, c := range children {
		d, ok := c.(*appsv1.Deployment)
		if !ok {
			continue
		}
		component := d.Labels[render.LabelComponent]
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			continue
		}
		selected[component] = true
		var ports []string
		for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
			ports = append(ports, p.Name)
		}
		for _, ep := range pm.Spec.PodMetricsEndpoints {
			if !slices.Contains(ports, ep.Port) {
				t.Errorf("the PodMonitor scrapes port %q, the %s container has %v", ep.Port, component, ports)
			}
		}
	}
	want := map[string]bool{"gateway": true, "engine": true}
	if !render.FallbackShared(&qs) { // a shared-pod fallback runs in the engine's pods
		want["fallback"] = true
	}
	if fmt.Sprint(selected) != fmt.Sprint(want) {
		t.Errorf("the PodMonitor selects the pods of %v, want %v", selected, want)
	}

	test := convert[corev1.Pod](t, find(t, objs, "Pod", "qwen-operator-test"))
	if test.Annotations["helm.sh/hook"] != "test" || test.Spec.ServiceAccountName != "qwen-operator" ||
		!slices.Equal(test.Spec.Containers[0].Command, []string{"/manager", "probe"}) || test.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("helm test Pod: annotations %v, service account %s, command %v", test.Annotations, test.Spec.ServiceAccountName, test.Spec.Containers[0].Command)
	}
}
