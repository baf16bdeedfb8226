package stack

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

//go:embed manifests/*.yaml
var manifestFS embed.FS

// manifestValues fill the manifest templates.
type manifestValues struct {
	Namespace, Name, RedisAddress, PrometheusURL string
}

// Manifests returns the demo manifests by file name, rendered for this demo.
func (s *State) Manifests() (map[string][]byte, error) {
	v := manifestValues{Namespace: s.Namespace, Name: s.Name,
		RedisAddress: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Ports.Redis)), PrometheusURL: s.PrometheusURL()}
	entries, err := manifestFS.ReadDir("manifests")
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range entries {
		t, err := template.New(e.Name()).Option("missingkey=error").ParseFS(manifestFS, path.Join("manifests", e.Name()))
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, v); err != nil {
			return nil, err
		}
		out[e.Name()] = b.Bytes()
	}
	return out, nil
}

// applyManifests writes the manifests to $dir/manifests and applies them with kubectl, as a
// user would.
func (s *Stack) applyManifests(ctx context.Context) error {
	ms, err := s.Manifests()
	if err != nil {
		return err
	}
	for name, b := range ms {
		if err := os.WriteFile(s.Path("manifests", name), b, 0o644); err != nil {
			return err
		}
	}
	out, err := s.Kubectl(ctx, "apply", "-f", s.Path("manifests"))
	if err != nil {
		return err
	}
	s.logf("%s", strings.TrimSpace(out))
	return nil
}

// Kubectl runs kubectl against the demo's API server and returns its combined output.
func (s *State) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.KubectlPath(), append([]string{"--kubeconfig", s.Kubeconfig()}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Client returns a controller-runtime client of the demo's API server.
func (s *State) Client() (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig())
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: render.NewScheme()})
}

// WaitConverged waits until the demo QwenService is Ready for its current generation, its
// RateLimitPolicy is accepted with effective limits, its DegradationPlan is accepted and has
// read the GPU temperature from Prometheus, and the gateway serves the model.
func (s *State) WaitConverged(ctx context.Context, timeout time.Duration) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key := func(name string) client.ObjectKey { return client.ObjectKey{Namespace: s.Namespace, Name: name} }
	checks := []struct {
		what  string
		check func() string // "" when done, else what is missing
	}{
		{"QwenService " + s.Name + " Ready", func() string {
			qs := &v1alpha1.QwenService{}
			if err := c.Get(ctx, key(s.Name), qs); err != nil {
				return err.Error()
			}
			return conditionTrue(qs.Status.Conditions, v1alpha1.ConditionReady, qs.Generation, qs.Status.ObservedGeneration)
		}},
		{"RateLimitPolicy " + s.Name + "-limits accepted", func() string {
			p := &v1alpha1.RateLimitPolicy{}
			if err := c.Get(ctx, key(s.Name+"-limits"), p); err != nil {
				return err.Error()
			}
			if p.Status.Effective == nil {
				return "no status.effective yet"
			}
			return conditionTrue(p.Status.Conditions, v1alpha1.ConditionAccepted, p.Generation, p.Status.ObservedGeneration)
		}},
		{"DegradationPlan " + s.Name + "-degrade reading telemetry", func() string {
			p := &v1alpha1.DegradationPlan{}
			if err := c.Get(ctx, key(s.Name+"-degrade"), p); err != nil {
				return err.Error()
			}
			if msg := conditionTrue(p.Status.Conditions, v1alpha1.ConditionAccepted, p.Generation, p.Status.ObservedGeneration); msg != "" {
				return msg
			}
			if _, ok := p.Status.Signals[string(v1alpha1.SignalGPUTemperature)]; !ok {
				return fmt.Sprintf("no GPUTemperature in status.signals yet (%v)", p.Status.Signals)
			}
			return ""
		}},
		{"gateway serving " + s.Model, func() string {
			cm := &corev1.ConfigMap{}
			if err := c.Get(ctx, key(s.Name+"-gateway"), cm); err != nil {
				return err.Error()
			}
			if !strings.Contains(cm.Data["config.yaml"], "rateLimit:") {
				return "the gateway ConfigMap has no rateLimit yet"
			}
			resp, err := httpGet(ctx, URL(s.Ports.Gateway)+"/v1/models")
			if err != nil {
				return err.Error()
			}
			if !strings.Contains(resp, `"`+s.Model+`"`) {
				return "/v1/models: " + resp
			}
			return ""
		}},
	}
	for _, ch := range checks {
		last := ""
		for {
			if last = ch.check(); last == "" {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %s", ch.what, last)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// conditionTrue returns "" when the condition is True for the current generation.
func conditionTrue(conds []metav1.Condition, typ string, generation, observed int64) string {
	if observed != generation {
		return fmt.Sprintf("status.observedGeneration %d, generation %d", observed, generation)
	}
	c := meta.FindStatusCondition(conds, typ)
	switch {
	case c == nil:
		return typ + " not reported yet"
	case c.Status != metav1.ConditionTrue:
		return fmt.Sprintf("%s=%s %s: %s", typ, c.Status, c.Reason, c.Message)
	}
	return ""
}
