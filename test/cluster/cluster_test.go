package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/buildinfo"
	"github.com/qwenops/qwen-operator/internal/imagebuild"
	"github.com/qwenops/qwen-operator/internal/telemetry"
	"github.com/qwenops/qwen-operator/internal/testutil/cluster"
	"github.com/qwenops/qwen-operator/internal/testutil/dcgm"
	"github.com/qwenops/qwen-operator/internal/testutil/promtest"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// TestProductOnARealNode installs the chart, applies the samples with the Simulator engine
// and drives the product as a user and an operator would: each subtest builds on the
// previous one, so the first failure stops the run.
func TestProductOnARealNode(t *testing.T) {
	s := newSuite(t)
	s.startPrometheus(t)
	steps := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"helm install", s.testInstall},
		{"samples become Ready", s.testSamples},
		{"helm test checks the gateway", s.testHelmTest},
		{"traffic through the gateway Service", s.testTraffic},
		{"engines isolated, metrics on the admin port", s.testIsolation},
		{"a policy edit reaches the gateway pods", s.testPolicyEdit},
		{"a gateway pod shuts down gracefully", s.testGatewayShutdown},
		{"GPU temperature drives L4 and back", s.testDegradation},
		{"a deleted engine pod opens the breaker", s.testBreaker},
		{"the manager logged no error", s.testManagerLogs},
		{"peak memory with every pod running", s.measureMemory},
		{"helm upgrade keeps the children", s.testUpgrade},
		{"helm uninstall leaves nothing", s.testUninstall},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.fn) {
			return
		}
	}
	s.report(t)
}

// startPrometheus runs Prometheus on the node address (the manager pod reaches it there). It
// discovers pods the way kubernetes_sd_configs would (Debian's build has no Kubernetes
// discovery, so the test serves it over http_sd): pods annotated prometheus.io/scrape, and the
// stand-in DCGM exporter with honor_labels (its series name the engine pod, as the real
// exporter's do).
func (s *suite) startPrometheus(t *testing.T) {
	sd := httptest.NewServer(http.HandlerFunc(s.serveDiscovery))
	t.Cleanup(sd.Close)
	p := promtest.StartWith(t, promtest.Options{Host: cluster.NodeIP, ScrapeConfigs: fmt.Sprintf(`
- job_name: pods
  http_sd_configs: [{url: "%[1]s/targets?job=pods", refresh_interval: 1s}]
- job_name: dcgm
  honor_labels: true
  http_sd_configs: [{url: "%[1]s/targets?job=dcgm", refresh_interval: 1s}]
`, sd.URL)})
	s.promURL = p.URL()
}

// serveDiscovery answers Prometheus' HTTP service discovery with the running pods: job=pods
// lists the pods annotated prometheus.io/scrape (but the DCGM exporter) with namespace and
// pod labels, job=dcgm the exporter.
func (s *suite) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	type group struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	groups := []group{}
	pods, err := s.cs.CoreV1().Pods("").List(r.Context(), metav1.ListOptions{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	for _, p := range pods.Items {
		if p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
			continue
		}
		dcgmPod := p.Labels["app"] == "dcgm-exporter"
		switch {
		case r.URL.Query().Get("job") == "dcgm" && dcgmPod:
			groups = append(groups, group{Targets: []string{p.Status.PodIP + ":9400"}, Labels: map[string]string{}})
		case r.URL.Query().Get("job") == "pods" && !dcgmPod && p.Annotations["prometheus.io/scrape"] == "true":
			groups = append(groups, group{
				Targets: []string{p.Status.PodIP + ":" + p.Annotations["prometheus.io/port"]},
				Labels:  map[string]string{"namespace": p.Namespace, "pod": p.Name, "__metrics_path__": p.Annotations["prometheus.io/path"]},
			})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(groups)
}

// Timings for BENCHMARKS.md, logged by report.
var installToAnswer time.Duration

func (s *suite) testInstall(t *testing.T) {
	ctx := context.Background()
	if _, err := s.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cs.CoreV1().ServiceAccounts(testNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "scraper"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The Prometheus Operator's CRDs, so the chart's ServiceMonitor and PodMonitor install.
	for _, crd := range []string{"servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com"} {
		s.run(t, time.Minute, s.kubectl, "apply", "--server-side", "-f", tools.CRDFile(t, crd))
		eventually(t, time.Minute, crd+" established", func() string { // kubectl wait fails while status is empty
			if _, err := s.tryRun(time.Minute, s.kubectl, "wait", "--for=condition=Established", "--timeout=60s", "crd/"+crd); err != nil {
				return err.Error()
			}
			return ""
		})
	}
	installStart = time.Now()
	s.run(t, 4*time.Minute, s.helm, "install", release, "charts/qwen-operator", "-n", operatorNS, "--create-namespace",
		"--set", "prometheus.url="+s.promURL,
		"--set-json", `metrics.readerSubjects=[{"kind":"ServiceAccount","name":"scraper","namespace":"`+testNS+`"}]`,
		"--set", "serviceMonitor.enabled=true", "--set", "podMonitor.enabled=true",
		"--wait", "--timeout", "3m")

	pod := s.managerPod(t)
	if img := pod.Spec.Containers[0].Image; img != buildinfo.ManagerImage() {
		t.Errorf("manager image %q, want %q", img, buildinfo.ManagerImage())
	}
	// Leader election: the Lease names the running pod.
	eventually(t, time.Minute, "the manager holds the leader Lease", func() string {
		l, err := s.cs.CoordinationV1().Leases(operatorNS).Get(ctx, leaseName, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if h := ptr.Deref(l.Spec.HolderIdentity, ""); !strings.HasPrefix(h, pod.Name) {
			return fmt.Sprintf("holder %q, want pod %s", h, pod.Name)
		}
		return ""
	})

	// Metrics through the chart's Service: refused without a token, served to the scraper.
	svc, err := s.cs.CoreV1().Services(operatorNS).Get(ctx, managerName+"-metrics", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	metricsURL := fmt.Sprintf("https://%s:8443/metrics", svc.Spec.ClusterIP)
	tok, err := s.cs.CoreV1().ServiceAccounts(testNS).CreateToken(ctx, "scraper", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hc := insecureHTTPS()
	eventually(t, time.Minute, "metrics served with authentication", func() string {
		resp, err := hc.Get(metricsURL)
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return "without a token: " + resp.Status
		}
		req, _ := http.NewRequest(http.MethodGet, metricsURL, nil)
		req.Header.Set("Authorization", "Bearer "+tok.Status.Token)
		resp, err = hc.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body := readAll(resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "controller_runtime_reconcile_total") {
			return fmt.Sprintf("with the scraper's token: %s %.200s", resp.Status, body)
		}
		return ""
	})

	// The token the chart's ServiceMonitor sends (its authorization credentials) is accepted too.
	eventually(t, time.Minute, "the ServiceMonitor's token scrapes the metrics", func() string {
		sec, err := s.cs.CoreV1().Secrets(operatorNS).Get(ctx, managerName+"-metrics-scraper", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if len(sec.Data["token"]) == 0 {
			return "the token controller has not filled the Secret yet"
		}
		req, _ := http.NewRequest(http.MethodGet, metricsURL, nil)
		req.Header.Set("Authorization", "Bearer "+string(sec.Data["token"]))
		return notOK(hc.Do(req))
	})

	// helm test right after install: no QwenService yet, the API serves the kind.
	if out := s.runCombined(t, 3*time.Minute, s.helm, "test", release, "-n", operatorNS, "--timeout", "2m"); !strings.Contains(out, "none exists yet") {
		t.Errorf("helm test on a fresh install:\n%s", out)
	}
}

// testHelmTest runs `helm test` once the samples are Ready: the probe Pod finds the
// QwenService and checks its gateway answers and serves the model.
func (s *suite) testHelmTest(t *testing.T) {
	out := s.runCombined(t, 3*time.Minute, s.helm, "test", release, "-n", operatorNS, "--timeout", "2m")
	if !strings.Contains(out, "ok   "+namespace+"/"+service+": gateway http://"+service+"-gateway."+namespace+".svc:8080 ready, serves "+model) {
		t.Errorf("helm test:\n%s", out)
	}
}

var installStart time.Time

func (s *suite) managerPod(t *testing.T) corev1.Pod {
	t.Helper()
	list, err := s.cs.CoreV1().Pods(operatorNS).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=manager"})
	if err != nil {
		t.Fatal(err)
	}
	var running []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && podReady(p) {
			running = append(running, p)
		}
	}
	if len(running) != 1 {
		t.Fatalf("want one ready manager pod, have %d of %d", len(running), len(list.Items))
	}
	return running[0]
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// testSamples applies config/samples with the Simulator engine (a GPU-less node), requests
// that fit two cores, and a plan that re-reads telemetry every 2s with a 10s cooldown (so
// the test sees L4 and back in seconds, not minutes). Everything else is the samples as
// written, including one nvidia.com/gpu per engine pod.
func (s *suite) testSamples(t *testing.T) {
	ctx := context.Background()
	if _, err := s.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	samples := filepath.Join(s.root, "config", "samples")
	var qs v1alpha1.QwenService
	readYAML(t, filepath.Join(samples, "serving_v1alpha1_qwenservice.yaml"), &qs)
	qs.Spec.Engine.Type = v1alpha1.EngineSimulator
	// This test checks the engine, fallback and gateway Deployments one by one: it keeps the
	// fallback in a Deployment of its own. The sample's shared pod (placement SharedPod) is
	// rendered for the Simulator by the golden case fallback-shared-simulator.
	qs.Spec.Fallback.Placement = v1alpha1.FallbackSeparateDeployment
	// 20 ms per token: a long stream lasts long enough to outlive a gateway pod's deletion.
	qs.Spec.Engine.Args = []string{"--inter-token-latency", "20ms"}
	qs.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	writeYAML(t, filepath.Join(dir, "qwenservice.yaml"), &qs)
	var dp v1alpha1.DegradationPlan
	readYAML(t, filepath.Join(samples, "serving_v1alpha1_degradationplan.yaml"), &dp)
	dp.Spec.Prometheus.Interval = metav1.Duration{Duration: 2 * time.Second}
	dp.Spec.Cooldown = metav1.Duration{Duration: 10 * time.Second}
	writeYAML(t, filepath.Join(dir, "degradationplan.yaml"), &dp)
	copyFile(t, filepath.Join(samples, "serving_v1alpha1_ratelimitpolicy.yaml"), filepath.Join(dir, "ratelimitpolicy.yaml"))
	s.run(t, time.Minute, s.kubectl, "apply", "-n", namespace, "-f", dir)
	s.startDCGMExporter(t)

	var got v1alpha1.QwenService
	eventually(t, 4*time.Minute, "QwenService Ready", func() string {
		if err := s.kube.Get(ctx, types.NamespacedName{Namespace: namespace, Name: service}, &got); err != nil {
			return err.Error()
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, "Ready"); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Sprintf("conditions %+v", got.Status.Conditions)
		}
		return ""
	})
	if want := "http://qwen3-gateway.ai.svc:8080/v1"; got.Status.Endpoint != want {
		t.Errorf("status.endpoint %q, want %q", got.Status.Endpoint, want)
	}
	var rlp v1alpha1.RateLimitPolicy
	var dp2 v1alpha1.DegradationPlan
	s.waitAccepted(t, policy, &rlp, func() []metav1.Condition { return rlp.Status.Conditions })
	s.waitAccepted(t, plan, &dp2, func() []metav1.Condition { return dp2.Status.Conditions })
	// Every component runs, Ready, under the securityContext and probes the operator rendered.
	for _, component := range []string{"engine", "fallback", "gateway"} {
		s.waitDeployment(t, namespace, service+"-"+component)
		dep, err := s.cs.AppsV1().Deployments(namespace).Get(ctx, service+"-"+component, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods := s.podsOf(t, component)
		if len(pods) != int(ptr.Deref(dep.Spec.Replicas, 1)) {
			t.Fatalf("%s: %d pods, want %d", component, len(pods), ptr.Deref(dep.Spec.Replicas, 1))
		}
		want := dep.Spec.Template.Spec.Containers[0]
		for _, p := range pods {
			c := p.Spec.Containers[0]
			if !podReady(p) || p.Status.ContainerStatuses[0].State.Running == nil {
				t.Errorf("%s pod %s is not running and Ready: %+v", component, p.Name, p.Status)
			}
			if fmt.Sprint(c.SecurityContext) != fmt.Sprint(want.SecurityContext) || c.ReadinessProbe == nil || c.LivenessProbe == nil {
				t.Errorf("%s pod %s: securityContext %v probes %v/%v, rendered %v", component, p.Name, c.SecurityContext, c.ReadinessProbe, c.LivenessProbe, want.SecurityContext)
			}
		}
	}
	gw := s.podsOf(t, "gateway")[0].Spec.Containers[0].SecurityContext
	if gw == nil || !ptr.Deref(gw.RunAsNonRoot, false) || !ptr.Deref(gw.ReadOnlyRootFilesystem, false) {
		t.Errorf("the gateway runs without its non-root, read-only securityContext: %v", gw)
	}
	if q := s.podsOf(t, "engine")[0].Spec.Containers[0].Resources.Limits[cluster.GPUResource]; q.Value() != 1 {
		t.Errorf("the engine pod asks for %v %s, want 1", q.String(), cluster.GPUResource)
	}
	svc, err := s.cs.CoreV1().Services(namespace).Get(ctx, service+"-gateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.gateway = fmt.Sprintf("http://%s:8080", svc.Spec.ClusterIP)
	// kube-proxy programs a new ClusterIP about a second after the endpoints are ready.
	eventually(t, time.Minute, "the gateway Service answers", s.answers(s.gateway+"/readyz", http.StatusOK))
}

// answers is a check that GET url answers with status code.
func (s *suite) answers(url string, code int) func() string {
	return func() string {
		resp, err := s.http.Get(url)
		return notStatus(code, resp, err)
	}
}

// waitAccepted waits until the named policy or plan is Accepted.
func (s *suite) waitAccepted(t *testing.T, name string, obj client.Object, conditions func() []metav1.Condition) {
	t.Helper()
	eventually(t, time.Minute, name+" Accepted", func() string {
		if err := s.kube.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: name}, obj); err != nil {
			return err.Error()
		}
		if c := meta.FindStatusCondition(conditions(), "Accepted"); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Sprintf("conditions %+v", conditions())
		}
		return ""
	})
}

// startDCGMExporter runs the stand-in DCGM exporter as a pod; its GPU is mapped to the engine
// pod once testDegradation names it.
func (s *suite) startDCGMExporter(t *testing.T) {
	ctx := context.Background()
	labels := map[string]string{"app": "dcgm-exporter"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "dcgm-exporter", Namespace: testNS, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: "exporter", Image: imagebuild.DCGMImage, ImagePullPolicy: corev1.PullNever,
						Args:           []string{"--listen", ":9400", "--namespace", namespace},
						Ports:          []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9400}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(9400)}}, PeriodSeconds: 1},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
	if _, err := s.cs.AppsV1().Deployments(testNS).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitDeployment(t, testNS, "dcgm-exporter")
	pods, err := s.cs.CoreV1().Pods(testNS).List(ctx, metav1.ListOptions{LabelSelector: "app=dcgm-exporter"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("dcgm-exporter pods: %v %v", pods, err)
	}
	s.dcgm = "http://" + pods.Items[0].Status.PodIP + ":9400"
}

// testTraffic talks to the gateway's ClusterIP as an in-cluster client would.
func (s *suite) testTraffic(t *testing.T) {
	// The first answer may wait for kube-proxy to program the engine's ClusterIP (about a
	// second after its endpoints are ready); the gateway answers 502 until then.
	eventually(t, time.Minute, "the first answer", func() string {
		r, err := s.chat(nil)
		if err != nil {
			return err.Error()
		}
		c, err := r.decode()
		if err != nil || r.status != http.StatusOK || c.Model != model || len(c.Choices) == 0 || c.Choices[0].Message.Content == "" {
			return fmt.Sprintf("chat: %d %s (%v)", r.status, r.body, err)
		}
		return ""
	})
	installToAnswer = time.Since(installStart)

	// A stream arrives as SSE chunks ending in [DONE], with usage when asked.
	body := `{"model":"` + model + `","stream":true,"stream_options":{"include_usage":true},"max_tokens":16,"ignore_eos":true,` +
		`"messages":[{"role":"user","content":"tell me about Qwen3"}]}`
	resp, err := s.http.Post(s.gateway+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	chunks, done, usage := 0, false, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "data: [DONE]":
			done = true
		case strings.HasPrefix(line, "data: "):
			chunks++
			usage = usage || strings.Contains(line, `"usage":{`)
		}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || chunks < 3 || !done || !usage {
		t.Fatalf("stream: %s %q, %d chunks, [DONE] %v, usage %v", resp.Status, resp.Header.Get("Content-Type"), chunks, done, usage)
	}

	// enable_thinking at the top level (LangChain's extra_body) is accepted either way.
	for _, thinking := range []bool{true, false} {
		r, err := s.chat(map[string]any{"enable_thinking": thinking})
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("enable_thinking=%v: %d %s %v", thinking, r.status, r.body, err)
		}
	}

	// The policy's limit: requests until the first 429, which carries the rate-limit headers.
	var limited *reply
	admitted := 0
	for i := 0; i < 200 && limited == nil; i++ {
		r, err := s.chat(nil)
		if err != nil {
			t.Fatal(err)
		}
		switch r.status {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
			limited = &r
		default:
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	if limited == nil {
		t.Fatalf("no 429 after %d admitted requests", admitted)
	}
	c, _ := limited.decode()
	h := limited.header
	retry, _ := strconv.Atoi(h.Get("Retry-After"))
	if retry < 1 || h.Get("RateLimit-Policy") == "" || h.Get("RateLimit") == "" || h.Get("X-RateLimit-Limit") == "" || c.Error == nil || c.Error.Code != "rate_limit_exceeded" {
		t.Errorf("429 without the rate-limit contract: headers %v body %s", h, limited.body)
	}
	t.Logf("limited after %d admitted requests: RateLimit-Policy %s, Retry-After %s", admitted, h.Get("RateLimit-Policy"), h.Get("Retry-After"))
}

// testIsolation checks the pod-level hardening on the real pods: the NetworkPolicy's selectors
// pick the running engine and fallback pods and admit the running gateway pods (the node's
// bridge does not enforce NetworkPolicy, so its content is what can be checked), no engine pod
// carries a service-account token, and the gateways serve /metrics only on the admin port,
// where Prometheus, following the pods' prometheus.io/port, scrapes them.
func (s *suite) testIsolation(t *testing.T) {
	ctx := context.Background()
	np, err := s.cs.NetworkingV1().NetworkPolicies(namespace).Get(ctx, service+"-engines", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The API server evaluates the policy's selectors against the running pods.
	selected := func(sel *metav1.LabelSelector) []string {
		list, err := s.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(sel)})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range list.Items {
			names = append(names, p.Labels["app.kubernetes.io/component"]+"/"+p.Name)
		}
		sort.Strings(names)
		return names
	}
	var engines, gateways []string
	for _, component := range []string{"engine", "fallback", "gateway"} {
		for _, p := range s.podsOf(t, component) {
			if component == "gateway" {
				gateways = append(gateways, component+"/"+p.Name)
			} else {
				engines = append(engines, component+"/"+p.Name)
			}
			if component == "gateway" {
				continue
			}
			for _, v := range p.Spec.Volumes {
				if v.Projected != nil && strings.HasPrefix(v.Name, "kube-api-access") {
					t.Errorf("engine pod %s mounts a service-account token (%s)", p.Name, v.Name)
				}
			}
			if sc := p.Spec.Containers[0].SecurityContext; sc == nil || ptr.Deref(sc.AllowPrivilegeEscalation, true) || !ptr.Deref(sc.RunAsNonRoot, false) ||
				!ptr.Deref(sc.ReadOnlyRootFilesystem, false) || ptr.Deref(sc.RunAsUser, 0) != 65532 {
				t.Errorf("Simulator pod %s runs without the strict securityContext: %+v", p.Name, sc)
			}
		}
	}
	sort.Strings(engines)
	sort.Strings(gateways)
	if got := selected(&np.Spec.PodSelector); fmt.Sprint(got) != fmt.Sprint(engines) {
		t.Errorf("the NetworkPolicy guards %v, want the engine and fallback pods %v", got, engines)
	}
	if got := selected(np.Spec.Ingress[0].From[0].PodSelector); fmt.Sprint(got) != fmt.Sprint(gateways) {
		t.Errorf("the NetworkPolicy admits %v, want the gateway pods %v", got, gateways)
	}

	if r, err := s.http.Get(s.gateway + "/metrics"); err != nil || r.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics through the gateway Service (which the Ingress routes): %v %v, want 404", r, err)
	} else {
		r.Body.Close()
	}
	for _, p := range s.podsOf(t, "gateway") {
		port := p.Annotations["prometheus.io/port"]
		resp, err := s.http.Get("http://" + p.Status.PodIP + ":" + port + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "qwen_gateway_config_reloads_total") || port == "8080" {
			t.Errorf("gateway pod %s admin port %s: %s", p.Name, port, resp.Status)
		}
	}
	eventually(t, time.Minute, "Prometheus scrapes both gateways", func() string {
		v, err := s.promQuery(ctx, `count(up{namespace="`+namespace+`",pod=~"`+service+`-gateway-.*"} == 1)`)
		if err != nil || v != 2 {
			return fmt.Sprintf("%v %v", v, err)
		}
		return ""
	})
}

// testGatewayShutdown deletes a gateway pod while a stream runs through it: the pod answers
// /readyz with 503 at once yet still serves new requests for its shutdown delay, the stream
// runs to [DONE], and the pod's grace period is the rendered one.
func (s *suite) testGatewayShutdown(t *testing.T) {
	ctx := context.Background()
	pod := s.podsOf(t, "gateway")[0]
	if g := ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30); g != 70 {
		t.Errorf("gateway grace period %ds, want the rendered 70s", g)
	}
	base := "http://" + pod.Status.PodIP + ":8080"
	body := `{"model":"` + model + `","stream":true,"max_tokens":400,"ignore_eos":true,"messages":[{"role":"user","content":"tell a long story"}]}`
	stream, err := (&http.Client{}).Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	events := bufio.NewScanner(stream.Body)
	if !events.Scan() || !strings.HasPrefix(events.Text(), "data: ") {
		t.Fatalf("first event: %q %v", events.Text(), events.Err())
	}
	if err := s.cs.CoreV1().Pods(namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The gateway keeps accepting for 5s after SIGTERM; this takes a fraction of that.
	eventuallyFast(t, time.Minute, "the terminating pod not ready", s.answers(base+"/readyz", http.StatusServiceUnavailable))
	chat := `{"model":"` + model + `","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}`
	r, err := s.http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(chat))
	if err != nil {
		t.Fatalf("a request while the pod is not ready: %v", err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("a request while the pod is not ready: %s", r.Status)
	}
	last := ""
	for events.Scan() {
		if events.Text() != "" {
			last = events.Text()
		}
	}
	if events.Err() != nil || last != "data: [DONE]" {
		t.Fatalf("the stream through the terminating pod: %v, last event %q", events.Err(), last)
	}
	s.waitDeployment(t, namespace, service+"-gateway")
}

// promQuery evaluates a PromQL expression that yields one number on the suite's Prometheus.
func (s *suite) promQuery(ctx context.Context, q string) (float64, error) {
	c, err := telemetry.New(telemetry.Access{URL: s.promURL}, 10*time.Second)
	if err != nil {
		return 0, err
	}
	return c.Query(ctx, v1alpha1.Trigger{Signal: v1alpha1.SignalPromQL, Query: q}, telemetry.Target{Namespace: namespace, Service: service}, time.Time{})
}

// testPolicyEdit tightens the RateLimitPolicy and measures how long until the gateway pods
// enforce the new limit; then it lifts the limits for the tests that follow.
func (s *suite) testPolicyEdit(t *testing.T) {
	s.patchPolicy(t, `{"spec":{"limits":{"requestsPerMinute":2,"burst":2},"schedules":null,"adaptive":null}}`)
	begin := time.Now()
	// Two gateway replicas with local limits each enforce half: 1 per minute, burst 1.
	eventually(t, time.Minute, "the new limit in force", func() string {
		r, err := s.chat(nil)
		if err != nil {
			return err.Error()
		}
		if p := r.header.Get("RateLimit-Policy"); r.status != http.StatusTooManyRequests || !strings.Contains(p, "q=1;w=60") {
			return fmt.Sprintf("%d, RateLimit-Policy %q", r.status, p)
		}
		return ""
	})
	policyEditApplied = time.Since(begin)
	t.Logf("the edited limit was enforced after %s", policyEditApplied.Round(100*time.Millisecond))
	s.patchPolicy(t, `{"spec":{"limits":{"requestsPerMinute":60000,"burst":1000}}}`)
	eventually(t, time.Minute, "the lifted limit in force", func() string {
		r, err := s.chat(nil)
		if err != nil {
			return err.Error()
		}
		if r.status != http.StatusOK {
			return fmt.Sprintf("%d %s", r.status, r.body)
		}
		return ""
	})
}

var policyEditApplied time.Duration

func (s *suite) patchPolicy(t *testing.T, patch string) {
	t.Helper()
	obj := &v1alpha1.RateLimitPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: policy}}
	if err := s.kube.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// testDegradation heats the GPU of the engine pod past the L4 trigger, sees the static reply,
// then cools it and sees real answers again.
func (s *suite) testDegradation(t *testing.T) {
	ctx := context.Background()
	engine := s.podsOf(t, "engine")[0].Name
	if _, err := dcgm.Set(ctx, s.http, s.dcgm, url.Values{"pod": {engine}, "temperature": {"95"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the static reply at L4", func() string {
		r, err := s.chat(nil)
		if err != nil {
			return err.Error()
		}
		c, _ := r.decode()
		if r.header.Get("X-Qwen-Degradation-Level") != "4" || len(c.Choices) == 0 || c.Choices[0].Message.Content != static {
			return fmt.Sprintf("%d level %q: %.200s", r.status, r.header.Get("X-Qwen-Degradation-Level"), r.body)
		}
		return ""
	})
	if _, err := dcgm.Set(ctx, s.http, s.dcgm, url.Values{"temperature": {"60"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "real answers at L0", func() string {
		r, err := s.chat(nil)
		if err != nil {
			return err.Error()
		}
		c, _ := r.decode()
		if r.status != http.StatusOK || r.header.Get("X-Qwen-Degradation-Level") != "" || c.Model != model {
			return fmt.Sprintf("%d level %q: %.200s", r.status, r.header.Get("X-Qwen-Degradation-Level"), r.body)
		}
		return ""
	})
}

// testBreaker takes the engine away as a failed GPU node would: the node advertises one GPU
// (held by the fallback) and the engine pod is deleted, so its replacement stays Pending. The
// gateways' breakers open and answers come from the fallback; once the GPUs are back, the new
// engine pod becomes Ready and a half-open probe closes the breakers.
func (s *suite) testBreaker(t *testing.T) {
	ctx := context.Background()
	if err := node.SetGPUs(ctx, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.SetGPUs(context.Background(), 4) })
	old := s.podsOf(t, "engine")[0].Name
	if err := s.cs.CoreV1().Pods(namespace).Delete(ctx, old, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
		t.Fatal(err)
	}
	answeredBy := func(want string) func() string {
		return func() string {
			r, err := s.chat(nil)
			if err != nil {
				return err.Error()
			}
			c, _ := r.decode()
			if r.status != http.StatusOK || c.Model != want {
				return fmt.Sprintf("%d from %q (upstream %q): %.200s", r.status, c.Model, r.header.Get("X-Qwen-Upstream"), r.body)
			}
			return ""
		}
	}
	eventually(t, 2*time.Minute, "answers from the fallback", answeredBy(fallback))
	for _, p := range s.podsOf(t, "engine") {
		if p.Status.Phase != corev1.PodPending {
			t.Fatalf("the new engine pod %s is %s, want Pending for want of a GPU", p.Name, p.Status.Phase)
		}
	}
	if err := node.SetGPUs(ctx, 4); err != nil {
		t.Fatal(err)
	}
	s.waitDeployment(t, namespace, service+"-engine")
	// The breaker half-opens after the plan's recoveryTimeout (30s) and closes on success.
	eventually(t, 2*time.Minute, "answers from the new engine pod", answeredBy(model))
}

var errorLine = regexp.MustCompile(`"level":"error"|\bERROR\b|\bpanic\b`)

// testManagerLogs reads the manager's log through the API server and the kubelet.
func (s *suite) testManagerLogs(t *testing.T) {
	logs := s.run(t, time.Minute, s.kubectl, "logs", "-n", operatorNS, "deploy/"+managerName)
	if logs == "" {
		t.Fatal("kubectl logs returned nothing")
	}
	for _, line := range strings.Split(logs, "\n") {
		if errorLine.MatchString(line) {
			t.Errorf("manager log: %s", line)
		}
	}
}

// testUpgrade changes a value with helm upgrade: the manager rolls to a new pod, which
// adopts the QwenService's children as they are.
func (s *suite) testUpgrade(t *testing.T) {
	before := s.children(t)
	old := s.managerPod(t).Name
	s.run(t, 4*time.Minute, s.helm, "upgrade", release, "charts/qwen-operator", "-n", operatorNS, "--reuse-values",
		"--set", "logLevel=debug", "--wait", "--timeout", "3m")
	eventually(t, 2*time.Minute, "a new manager pod", func() string {
		list, err := s.cs.CoreV1().Pods(operatorNS).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=manager"})
		if err != nil {
			return err.Error()
		}
		if len(list.Items) != 1 || list.Items[0].Name == old || !podReady(list.Items[0]) {
			return fmt.Sprintf("%d pods, old %s", len(list.Items), old)
		}
		if !strings.Contains(strings.Join(list.Items[0].Spec.Containers[0].Args, " "), "--zap-log-level=debug") {
			return "the new pod lacks the new value"
		}
		return ""
	})
	// The new manager has reconciled the service (its status is Ready for this generation)
	// and replaced no child.
	eventually(t, time.Minute, "the QwenService reconciled by the new manager", func() string {
		var qs v1alpha1.QwenService
		if err := s.kube.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: service}, &qs); err != nil {
			return err.Error()
		}
		if c := meta.FindStatusCondition(qs.Status.Conditions, "Ready"); c == nil || c.Status != metav1.ConditionTrue || qs.Status.ObservedGeneration != qs.Generation {
			return fmt.Sprintf("%+v", qs.Status.Conditions)
		}
		return ""
	})
	if after := s.children(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("children changed across the upgrade:\nbefore %v\nafter  %v", before, after)
	}
	r, err := s.chat(nil)
	if err != nil || r.status != http.StatusOK {
		t.Errorf("chat after the upgrade: %d %s %v", r.status, r.body, err)
	}
}

// children lists the QwenService's children as kind/name=uid.
func (s *suite) children(t *testing.T) []string {
	t.Helper()
	out := s.run(t, time.Minute, s.kubectl, "get", "-n", namespace,
		"deployments,services,configmaps,serviceaccounts,roles,rolebindings,poddisruptionbudgets,ingresses",
		"-l", "qwenops.io/service="+service, "-o", `jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.uid}{"\n"}{end}`)
	lines := strings.Fields(out)
	if len(lines) < 10 {
		t.Fatalf("only %d children: %v", len(lines), lines)
	}
	return lines
}

// testUninstall removes everything the way the docs say and then looks through every
// resource type the API server serves for anything left.
func (s *suite) testUninstall(t *testing.T) {
	s.run(t, 3*time.Minute, s.kubectl, "delete", "namespace", namespace, "--wait", "--timeout=150s")
	s.run(t, 3*time.Minute, s.helm, "uninstall", release, "-n", operatorNS, "--wait", "--timeout", "2m")
	s.run(t, 3*time.Minute, s.kubectl, "delete", "namespace", operatorNS, testNS, "--wait", "--timeout=150s")
	left := s.leftovers(t)
	if len(left) > 0 {
		t.Errorf("left behind after uninstall: %v", left)
	}
	// The CRDs stay (Helm never deletes crds/), as the chart's README says.
	for _, crd := range []string{"qwenservices", "ratelimitpolicies", "degradationplans"} {
		s.run(t, time.Minute, s.kubectl, "get", "crd", crd+".serving.qwenops.io")
	}
}

// leftovers lists every object of every listable resource whose name or labels mention the
// operator, except the CRDs (kept by design) with the APIService the API server registers for
// their group, and the node itself.
func (s *suite) leftovers(t *testing.T) []string {
	t.Helper()
	kinds := strings.Fields(s.run(t, time.Minute, s.kubectl, "api-resources", "--verbs=list", "-o", "name"))
	var left []string
	mentions := regexp.MustCompile(`qwen`)
	for _, kind := range kinds {
		if kind == "customresourcedefinitions.apiextensions.k8s.io" || kind == "events" || kind == "events.events.k8s.io" {
			continue
		}
		out, err := s.tryRun(time.Minute, s.kubectl, "get", kind, "-A", "--ignore-not-found",
			"-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {.metadata.labels}{"\n"}{end}`)
		if err != nil {
			t.Logf("listing %s: %v", kind, err)
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			if line == "" || !mentions.MatchString(line) || strings.Contains(line, cluster.NodeName) ||
				kind == "apiservices.apiregistration.k8s.io" && strings.HasPrefix(line, "/"+v1alpha1.GroupVersion.Version+"."+v1alpha1.GroupVersion.Group+" ") {
				continue
			}
			left = append(left, kind+" "+line)
		}
	}
	return left
}

// report logs the numbers BENCHMARKS.md records.
func (s *suite) report(t *testing.T) {
	for _, st := range node.Timings {
		t.Logf("cluster-bench: node start: %-36s %6.1fs", st.Step, st.Since.Seconds())
	}
	t.Logf("cluster-bench: binaries and images built and written in %s", imagesBuilt.Round(100*time.Millisecond))
	t.Logf("cluster-bench: helm install to the first answer through the gateway: %s", installToAnswer.Round(100*time.Millisecond))
	t.Logf("cluster-bench: a RateLimitPolicy edit enforced by the gateway pods after %s", policyEditApplied.Round(100*time.Millisecond))
	for _, l := range memoryLines {
		t.Logf("cluster-bench: peak RSS %s", l)
	}
	t.Logf("cluster-bench: peak RSS of the node's processes and pods, summed: %d MiB", memoryTotal>>20)
}

// Peak memory while the product runs, logged by report.
var (
	memoryTotal int64
	memoryLines []string
)

// measureMemory reads the peak RSS of the node's processes and of every pod's process while
// the product runs (after the traffic, degradation and breaker steps).
func (s *suite) measureMemory(t *testing.T) {
	memoryTotal, memoryLines = node.PeakMemory()
	if memoryTotal == 0 || len(memoryLines) < 7 {
		t.Errorf("no memory readings: %v", memoryLines)
	}
}

func readAll(resp *http.Response) string {
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String()
}

func readYAML(t *testing.T, path string, obj any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeYAML(t *testing.T, path string, obj any) {
	t.Helper()
	b, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// notOK closes the response and says why it is not a 200 ("" when it is).
func notOK(resp *http.Response, err error) string { return notStatus(http.StatusOK, resp, err) }

// notStatus closes the response and says why its status is not code ("" when it is).
func notStatus(code int, resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode != code {
		return resp.Status
	}
	return ""
}
