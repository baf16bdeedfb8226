package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/qwenops/qwen-operator/internal/render"
	"github.com/qwenops/qwen-operator/internal/testutil/cluster"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// Names the suite installs and applies.
const (
	release     = "qwen-operator"
	operatorNS  = "qwen-operator-system"
	namespace   = "ai"
	testNS      = "qwen-test" // the stand-in DCGM exporter and the metrics scraper's identity
	service     = "qwen3"
	policy      = "qwen3-limits"
	plan        = "qwen3-degrade"
	model       = "Qwen3-1.7B"
	fallback    = "Qwen3-0.6B"
	static      = "服务繁忙，请稍后再试"
	leaseName   = "qwen-operator.qwenops.io"
	managerName = "qwen-operator"
)

// suite is the state the ordered subtests share.
type suite struct {
	root, helm, kubectl string
	cs                  *kubernetes.Clientset
	kube                client.Client
	http                *http.Client
	// gateway is the base URL of the gateway's ClusterIP Service.
	gateway string
	// promURL is the Prometheus the DegradationPlan reads, on the node address.
	promURL string
	// dcgm is the stand-in DCGM exporter's pod URL.
	dcgm string
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	s := &suite{helm: tools.Path(t, "helm"), kubectl: node.Kubectl(), http: &http.Client{Timeout: 30 * time.Second}}
	var err error
	if s.root, err = tools.RepoRoot(); err != nil {
		t.Fatal(err)
	}
	if s.cs, err = node.Clientset(); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", node.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	if s.kube, err = client.New(cfg, client.Options{Scheme: render.NewScheme()}); err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs a command with the node's kubeconfig and fails the test on error.
func (s *suite) run(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := s.tryRun(timeout, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (s *suite) tryRun(timeout time.Duration, name string, args ...string) (string, error) {
	return s.exec(timeout, false, name, args...)
}

// runCombined is run with stderr in the output too (helm prints a test Pod's log there).
func (s *suite) runCombined(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := s.exec(timeout, true, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (s *suite) exec(timeout time.Duration, combined bool, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+node.Kubeconfig())
	cmd.Dir = s.root
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if combined {
		cmd.Stderr = &out
	}
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// eventually polls check every 500ms until it returns "" or timeout passes; then it fails
// the test with check's last answer.
func eventually(t *testing.T, timeout time.Duration, what string, check func() string) {
	t.Helper()
	pollUntil(t, timeout, 500*time.Millisecond, what, check)
}

func pollUntil(t *testing.T, timeout, every time.Duration, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, timeout, msg)
		}
		time.Sleep(every) // polling the cluster's state
	}
}

// eventuallyFast is eventually polling every 100ms, for states that last a few seconds.
func eventuallyFast(t *testing.T, timeout time.Duration, what string, check func() string) {
	t.Helper()
	pollUntil(t, timeout, 100*time.Millisecond, what, check)
}

// waitDeployment waits up to two minutes for a Deployment's pods to be ready.
func (s *suite) waitDeployment(t *testing.T, ns, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cluster.WaitDeploymentReady(ctx, s.cs, ns, name); err != nil {
		t.Fatal(err)
	}
}

// podsOf lists the running pods of a component of the QwenService.
func (s *suite) podsOf(t *testing.T, component string) []corev1.Pod {
	t.Helper()
	list, err := s.cs.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: "qwenops.io/service=" + service + ",app.kubernetes.io/component=" + component,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// reply is one answer of the gateway.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// chat sends a non-streaming chat through the gateway's Service.
func (s *suite) chat(extra map[string]any) (reply, error) {
	body := map[string]any{
		"model":      model,
		"messages":   []map[string]string{{"role": "user", "content": "你是谁？"}},
		"max_tokens": 8,
	}
	for k, v := range extra {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	resp, err := s.http.Post(s.gateway+"/v1/chat/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: data}, err
}

// completion is the part of a chat completion the tests read.
type completion struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Error *struct {
		Code string `json:"code"`
		Type string `json:"type"`
	} `json:"error"`
}

func (r reply) decode() (completion, error) {
	var c completion
	err := json.Unmarshal(r.body, &c)
	return c, err
}

// insecureHTTPS reaches the manager's self-signed metrics endpoint.
func insecureHTTPS() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}
