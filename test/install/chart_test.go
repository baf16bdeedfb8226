package install

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// TestHelmLint lints the chart strictly (warnings fail) with the default values and with every
// optional feature on.
func TestHelmLint(t *testing.T) {
	for name, extra := range map[string][]string{"defaults": nil, "all features": allFeatures} {
		t.Run(name, func(t *testing.T) {
			out := helm(t, append([]string{"lint", "--strict", chartDir}, extra...)...)
			if !strings.Contains(out, "0 chart(s) failed") || strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
				t.Fatalf("helm lint is not clean:\n%s", out)
			}
		})
	}
}

// TestChartCopiesMatchConfig checks the files `make manifests` copies into the chart: the CRDs,
// the manager's RBAC rules and the Grafana dashboard.
func TestChartCopiesMatchConfig(t *testing.T) {
	t.Run("crds", func(t *testing.T) {
		want := yamlFiles(t, repoPath(t, crdDir))
		got := yamlFiles(t, repoPath(t, chartCRDDir))
		if len(want) != 3 {
			t.Fatalf("%s holds %d CRDs, want 3", crdDir, len(want))
		}
		if !slices.Equal(sortedKeys(got), sortedKeys(want)) {
			t.Fatalf("chart CRDs %v, config CRDs %v: %s", sortedKeys(got), sortedKeys(want), syncHint)
		}
		for name, b := range want {
			if !bytes.Equal(got[name], b) {
				t.Errorf("%s/%s differs from %s/%s: %s", chartCRDDir, name, crdDir, name, syncHint)
			}
		}
	})
	t.Run("manager role", func(t *testing.T) {
		want := managerRole(t)
		got, err := os.ReadFile(repoPath(t, chartRoleFile))
		switch {
		case want == nil && err == nil:
			t.Fatalf("%s exists but %s does not: %s", chartRoleFile, roleFile, syncHint)
		case want == nil:
			// Neither exists yet: the chart renders a ClusterRole without rules.
		case err != nil:
			t.Fatalf("%s: %v: %s", chartRoleFile, err, syncHint)
		case !bytes.Equal(got, want):
			t.Fatalf("%s differs from %s: %s", chartRoleFile, roleFile, syncHint)
		}
	})
	t.Run("dashboard", func(t *testing.T) {
		want, err := os.ReadFile(repoPath(t, dashboardFile))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(repoPath(t, chartDashboard))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s differs from %s: %s", chartDashboard, dashboardFile, syncHint)
		}
	})
}

// TestChartRendersDefaults renders the default values: exactly the CRDs (kept on uninstall), the
// manager, its RBAC and its metrics Service, with the hardened pod and the flags the values name.
func TestChartRendersDefaults(t *testing.T) {
	objs := objects(t, renderChart(t, chartDir, "qwen-operator", "qwen-system"))
	want := []string{
		"ClusterRole /qwen-operator-manager",
		"ClusterRole /qwen-operator-metrics-auth",
		"ClusterRole /qwen-operator-metrics-reader",
		"ClusterRoleBinding /qwen-operator-manager",
		"ClusterRoleBinding /qwen-operator-metrics-auth",
		"CustomResourceDefinition /degradationplans.serving.qwenops.io",
		"CustomResourceDefinition /qwenservices.serving.qwenops.io",
		"CustomResourceDefinition /ratelimitpolicies.serving.qwenops.io",
		"Deployment qwen-system/qwen-operator",
		"Pod qwen-system/qwen-operator-test",
		"Role qwen-system/qwen-operator-leader-election",
		"RoleBinding qwen-system/qwen-operator-leader-election",
		"Service qwen-system/qwen-operator-metrics",
		"ServiceAccount qwen-system/qwen-operator",
	}
	if got := ids(objs); !slices.Equal(got, want) {
		t.Fatalf("default render:\n got %v\nwant %v", got, want)
	}

	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" && o.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s annotations %v: want helm.sh/resource-policy: keep", o.GetName(), o.GetAnnotations())
		}
	}
	d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "qwen-operator"))
	checkManagerPod(t, d)
	c := d.Spec.Template.Spec.Containers[0]
	for _, arg := range []string{
		"--leader-elect=true",
		"--metrics-bind-address=:8443",
		"--metrics-secure=true",
		"--health-probe-bind-address=:8081",
		"--vllm-image=vllm/vllm-openai:v0.11.0",
		"--sglang-image=lmsysorg/sglang:v0.5.4",
		"--simulator-image=ghcr.io/llm-d/llm-d-inference-sim:v0.10.2",
		"--gateway-image=ghcr.io/qwenops/qwen-gateway:0.1.0",
		"--prometheus-url=http://prometheus-operated.monitoring.svc:9090",
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
		"--qwenservice-workers=16",
	} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("manager args %v lack %s", c.Args, arg)
		}
	}
	if c.Image != "ghcr.io/qwenops/qwen-operator:0.1.0" {
		t.Errorf("manager image %q, want the appVersion tag", c.Image)
	}

	// The ClusterRole carries exactly controller-gen's rules.
	var wantRules []rbacv1.PolicyRule
	if b := managerRole(t); b != nil {
		wantRules = roleRules(t, b)
	}
	role := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "qwen-operator-manager"))
	if !equalRules(role.Rules, wantRules) {
		t.Errorf("manager ClusterRole rules %v, want %s's %v", role.Rules, roleFile, wantRules)
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, o := range objs {
			if o.GetKind() != kind {
				continue
			}
			b := convert[rbacv1.ClusterRoleBinding](t, o)
			wantSubject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "qwen-operator", Namespace: "qwen-system"}}
			if !reflect.DeepEqual(b.Subjects, wantSubject) || b.RoleRef.Name != b.Name {
				t.Errorf("%s %s binds %v to %s", kind, b.Name, b.Subjects, b.RoleRef.Name)
			}
		}
	}
	svc := convert[corev1.Service](t, find(t, objs, "Service", "qwen-operator-metrics"))
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "https" || svc.Spec.Ports[0].Port != 8443 || svc.Spec.Ports[0].TargetPort.StrVal != "metrics" {
		t.Errorf("metrics Service ports %+v", svc.Spec.Ports)
	}
	if !selects(svc.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("metrics Service selector %v does not select the manager pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
}

// checkManagerPod checks the manager pod's hardening, probes and resources.
func checkManagerPod(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Spec
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("manager pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("manager pod has %d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("manager container securityContext %+v: want a read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("manager probes: liveness %+v readiness %+v", c.LivenessProbe, c.ReadinessProbe)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["metrics"] != 8443 || ports["probes"] != 8081 {
		t.Errorf("manager ports %v, want metrics 8443 and probes 8081", ports)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("manager resources %+v: want CPU and memory requests and a memory limit", c.Resources)
	}
}

// TestChartRendersAllFeatures renders every optional part: the ServiceMonitor (with its
// scraper identity), the PodMonitor, the Grafana dashboard ConfigMap, Redis and the
// metrics-reader binding.
func TestChartRendersAllFeatures(t *testing.T) {
	objs := objects(t, renderChart(t, chartDir, "qwen", "mon", allFeatures...))

	sm := find(t, objs, "ServiceMonitor", "qwen-qwen-operator")
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" || sm.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor %s with labels %v", sm.GetAPIVersion(), sm.GetLabels())
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 || eps[0].(map[string]any)["port"] != "https" || eps[0].(map[string]any)["scheme"] != "https" {
		t.Errorf("ServiceMonitor endpoints %v", eps)
	}
	// The scrape authenticates with the scraper ServiceAccount's token Secret, bound to the
	// metrics-reader ClusterRole; no deprecated bearerTokenFile.
	ep := eps[0].(map[string]any)
	secret, _, _ := unstructured.NestedString(ep, "authorization", "credentials", "name")
	if typ, _, _ := unstructured.NestedString(ep, "authorization", "type"); typ != "Bearer" || ep["bearerTokenFile"] != nil || ep["bearerTokenSecret"] != nil {
		t.Errorf("ServiceMonitor endpoint %v: want authorization Bearer and no bearerToken* field", ep)
	}
	token := convert[corev1.Secret](t, find(t, objs, "Secret", secret))
	scraper := token.Annotations[corev1.ServiceAccountNameKey]
	find(t, objs, "ServiceAccount", scraper)
	binding := convert[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", scraper))
	if token.Type != corev1.SecretTypeServiceAccountToken || binding.RoleRef.Name != "qwen-qwen-operator-metrics-reader" ||
		len(binding.Subjects) != 1 || binding.Subjects[0].Name != scraper || binding.Subjects[0].Namespace != "mon" {
		t.Errorf("scraper token %s (%s) bound by %+v", secret, token.Type, binding)
	}
	smSel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	svc := find(t, objs, "Service", "qwen-qwen-operator-metrics")
	if !selects(smSel, svc.GetLabels()) {
		t.Errorf("ServiceMonitor selector %v does not select the metrics Service %v", smSel, svc.GetLabels())
	}
	pm := find(t, objs, "PodMonitor", "qwen-qwen-operator-workloads")
	if pm.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("PodMonitor labels %v", pm.GetLabels())
	}

	cm := convert[corev1.ConfigMap](t, find(t, objs, "ConfigMap", "qwen-qwen-operator-dashboard"))
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v lack grafana_dashboard: \"1\"", cm.Labels)
	}
	want, err := os.ReadFile(repoPath(t, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	got := cm.Data["qwen-operator-dashboard.json"]
	if got != strings.TrimRight(string(want), "\n") {
		t.Errorf("dashboard ConfigMap data differs from %s", dashboardFile)
	}
	if !json.Valid([]byte(got)) {
		t.Errorf("dashboard ConfigMap data is not JSON")
	}

	redis := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "qwen-qwen-operator-redis"))
	rc := redis.Spec.Template.Spec.Containers[0]
	if rc.Image != "redis:7-alpine" {
		t.Errorf("redis image %q", rc.Image)
	}
	args := strings.Join(rc.Args, " ")
	for _, a := range []string{`--save  --appendonly no`, "--requirepass $(REDIS_PASSWORD)"} {
		if !strings.Contains(args, a) {
			t.Errorf("redis args %q lack %q", args, a)
		}
	}
	if len(rc.Env) != 1 || rc.Env[0].ValueFrom == nil || rc.Env[0].ValueFrom.SecretKeyRef == nil || rc.Env[0].ValueFrom.SecretKeyRef.Name != "qwen-redis" {
		t.Errorf("redis password env %+v", rc.Env)
	}
	if sc := rc.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("redis container securityContext %+v", sc)
	}
	rsvc := convert[corev1.Service](t, find(t, objs, "Service", "qwen-qwen-operator-redis"))
	if !selects(rsvc.Spec.Selector, redis.Spec.Template.Labels) || rsvc.Spec.Ports[0].Port != 6379 {
		t.Errorf("redis Service %v:%v does not reach the redis pod %v", rsvc.Spec.Selector, rsvc.Spec.Ports, redis.Spec.Template.Labels)
	}
	// The manager's selectors must not pick up the Redis pod, nor Redis' the manager's.
	mgr := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "qwen-qwen-operator"))
	msvc := convert[corev1.Service](t, svc)
	if selects(mgr.Spec.Selector.MatchLabels, redis.Spec.Template.Labels) || selects(msvc.Spec.Selector, redis.Spec.Template.Labels) ||
		selects(redis.Spec.Selector.MatchLabels, mgr.Spec.Template.Labels) {
		t.Errorf("manager and redis selectors overlap: %v / %v", mgr.Spec.Selector.MatchLabels, redis.Spec.Selector.MatchLabels)
	}

	reader := convert[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", "qwen-qwen-operator-metrics-reader"))
	if reader.RoleRef.Name != "qwen-qwen-operator-metrics-reader" || len(reader.Subjects) != 1 || reader.Subjects[0].Name != "prometheus" {
		t.Errorf("metrics-reader binding %+v", reader)
	}
}

// TestChartValues checks values that change the rendered objects.
func TestChartValues(t *testing.T) {
	t.Run("leader election off", func(t *testing.T) {
		objs := objects(t, renderChart(t, chartDir, "qwen-operator", "x", "--set", "leaderElection.enabled=false"))
		for _, o := range objs {
			if o.GetKind() == "Role" || o.GetKind() == "RoleBinding" {
				t.Errorf("leader election off still renders %s %s", o.GetKind(), o.GetName())
			}
		}
		d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "qwen-operator"))
		if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--leader-elect=false") {
			t.Errorf("args %v", d.Spec.Template.Spec.Containers[0].Args)
		}
	})
	t.Run("plain http metrics", func(t *testing.T) {
		objs := objects(t, renderChart(t, chartDir, "qwen-operator", "x", "--set", "metrics.secure=false", "--set", "serviceMonitor.enabled=true"))
		for _, o := range objs {
			if strings.Contains(o.GetName(), "metrics-auth") || strings.Contains(o.GetName(), "metrics-reader") || strings.Contains(o.GetName(), "metrics-scraper") {
				t.Errorf("insecure metrics still render %s %s", o.GetKind(), o.GetName())
			}
		}
		svc := convert[corev1.Service](t, find(t, objs, "Service", "qwen-operator-metrics"))
		sm := find(t, objs, "ServiceMonitor", "qwen-operator")
		eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		if svc.Spec.Ports[0].Name != "http" || eps[0].(map[string]any)["scheme"] != "http" || eps[0].(map[string]any)["authorization"] != nil {
			t.Errorf("plain metrics: Service port %q, ServiceMonitor endpoint %v", svc.Spec.Ports[0].Name, eps[0])
		}
	})
	t.Run("images, URL, scheduling", func(t *testing.T) {
		objs := objects(t, renderChart(t, chartDir, "qwen-operator", "x",
			"--set", "image.tag=v9", "--set", "gatewayImage.tag=v8", "--set", "engineImages.vllm=my/vllm:1",
			"--set", "prometheus.url=http://prom:9090", "--set", "replicaCount=2",
			"--set", "nodeSelector.pool=system", "--set", "tolerations[0].key=dedicated",
			"--set", "tolerations[0].operator=Exists", "--set", "extraArgs[0]=--zap-devel"))
		d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "qwen-operator"))
		c := d.Spec.Template.Spec.Containers[0]
		for _, arg := range []string{"--gateway-image=ghcr.io/qwenops/qwen-gateway:v8", "--vllm-image=my/vllm:1", "--prometheus-url=http://prom:9090", "--zap-devel"} {
			if !slices.Contains(c.Args, arg) {
				t.Errorf("args %v lack %s", c.Args, arg)
			}
		}
		if c.Image != "ghcr.io/qwenops/qwen-operator:v9" || *d.Spec.Replicas != 2 ||
			d.Spec.Template.Spec.NodeSelector["pool"] != "system" || len(d.Spec.Template.Spec.Tolerations) != 1 {
			t.Errorf("image %s, replicas %d, nodeSelector %v, tolerations %v", c.Image, *d.Spec.Replicas,
				d.Spec.Template.Spec.NodeSelector, d.Spec.Template.Spec.Tolerations)
		}
	})
	t.Run("existing service account", func(t *testing.T) {
		if out, err := helmRun(t, "template", "q", chartDir, "--set", "serviceAccount.create=false"); err == nil || !strings.Contains(out, "serviceAccount.name is required") {
			t.Errorf("serviceAccount.create=false without a name: err %v\n%s", err, out)
		}
		objs := objects(t, renderChart(t, chartDir, "qwen-operator", "x", "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=ops"))
		for _, o := range objs {
			if o.GetKind() == "ServiceAccount" {
				t.Errorf("serviceAccount.create=false still renders a ServiceAccount")
			}
		}
		d := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "qwen-operator"))
		if d.Spec.Template.Spec.ServiceAccountName != "ops" {
			t.Errorf("serviceAccountName %q", d.Spec.Template.Spec.ServiceAccountName)
		}
	})
}

// TestChartManagerRulesComeFromRoleFile renders a copy of the chart holding a controller-gen
// role file, so the mechanism is checked before (and independently of) the real role.yaml.
func TestChartManagerRulesComeFromRoleFile(t *testing.T) {
	chart := filepath.Join(t.TempDir(), "qwen-operator")
	copyDir(t, repoPath(t, chartDir), chart)
	fixture, err := os.ReadFile("testdata/manager-role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(chart, "files", "manager-role.yaml"), fixture, 0o644); err != nil {
		t.Fatal(err)
	}
	objs := objects(t, renderChart(t, chart, "qwen-operator", "x"))
	role := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "qwen-operator-manager"))
	if want := roleRules(t, fixture); !equalRules(role.Rules, want) {
		t.Errorf("rendered rules %v, want %v", role.Rules, want)
	}

	// The rendered rules grant what they say on a real API server.
	const ns, release = "qwen-rules", "qwen-rules"
	createNamespace(t, ns)
	apply(t, renderChart(t, chart, release, ns))
	checkRules(t, "system:serviceaccount:"+ns+":"+release+"-qwen-operator", role.Rules)

	if err := os.WriteFile(filepath.Join(chart, "files", "manager-role.yaml"), []byte("rules: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := helmRun(t, "template", "q", chart); err == nil || !strings.Contains(out, "files/manager-role.yaml") {
		t.Errorf("a malformed role file renders: err %v\n%s", err, out)
	}
}

// TestChartInstalls applies the default render, CRDs included, to the test API server for
// real, then checks every object exists and the manager's ServiceAccount holds its permissions.
func TestChartInstalls(t *testing.T) {
	const ns, release = "qwen-helm", "qwen"
	createNamespace(t, ns)
	manifest := renderChart(t, chartDir, release, ns)
	objs := objects(t, manifest)
	var crds []string
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, "crd/"+o.GetName())
		}
	}
	if len(crds) != 3 {
		t.Fatalf("the default values render %d CRDs, want 3", len(crds))
	}
	apply(t, manifest)
	waitEstablished(t, crds...)
	kubectl(t, []byte(manifest), "get", "-f", "-")

	sa := "system:serviceaccount:" + ns + ":" + release + "-qwen-operator"
	checkCan(t, sa, ns, true, "create", "leases.coordination.k8s.io")
	checkCan(t, sa, ns, true, "create", "events")
	checkCan(t, sa, "", true, "create", "tokenreviews.authentication.k8s.io")
	checkCan(t, sa, "", true, "create", "subjectaccessreviews.authorization.k8s.io")
	checkCan(t, sa, "default", false, "create", "leases.coordination.k8s.io")
	role := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", release+"-qwen-operator-manager"))
	checkRules(t, sa, role.Rules)
}

// TestChartInstallsAllFeatures applies the render with every optional part on, after installing
// the Prometheus Operator's own ServiceMonitor and PodMonitor CRDs: the API server checks the
// monitors against the real schemas, refusing unknown fields.
func TestChartInstallsAllFeatures(t *testing.T) {
	const ns, release = "qwen-helm-all", "qwen-all"
	installPrometheusOperatorCRDs(t)
	createNamespace(t, ns)
	manifest := renderChart(t, chartDir, release, ns, allFeatures...)
	kubectl(t, []byte(manifest), "apply", "--server-side", "--force-conflicts", "--validate=strict", "--field-manager=qwen-install-test", "-f", "-")
	kubectl(t, []byte(manifest), "get", "-f", "-")
	for _, name := range []string{"servicemonitor/" + release + "-qwen-operator", "podmonitor/" + release + "-qwen-operator-workloads",
		"configmap/" + release + "-qwen-operator-dashboard", "deployment/" + release + "-qwen-operator-redis", "service/" + release + "-qwen-operator-redis"} {
		kubectl(t, nil, "-n", ns, "get", name)
	}
	checkCan(t, "system:serviceaccount:monitoring:prometheus", "", true, "get", "/metrics")
	checkCan(t, "system:serviceaccount:"+ns+":"+release+"-qwen-operator-metrics-scraper", "", true, "get", "/metrics")
}

// waitEstablished polls until each CRD ("crd/<name>") is Established (kubectl wait fails
// instead of waiting while a new CRD has no status yet).
func waitEstablished(t *testing.T, crds ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for _, crd := range crds {
		for {
			out, err := env.KubectlRun(nil, "get", crd, "-o", `jsonpath={.status.conditions[?(@.type=="Established")].status}`)
			if err == nil && out == "True" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not established after a minute: %v %s", crd, err, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// installPrometheusOperatorCRDs installs the ServiceMonitor and PodMonitor CRDs of the
// Prometheus Operator version hack/versions.sh pins.
func installPrometheusOperatorCRDs(t *testing.T) {
	t.Helper()
	for _, name := range []string{"servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com"} {
		b, err := os.ReadFile(tools.CRDFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		apply(t, string(b))
		waitEstablished(t, "crd/"+name)
	}
}

// TestChartValuesDocumented checks that README.md's values table documents every value in
// values.yaml and nothing else.
func TestChartValuesDocumented(t *testing.T) {
	readme, err := os.ReadFile(repoPath(t, chartDir+"/README.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			if key, _, ok := strings.Cut(rest, "`"); ok {
				documented[key] = true
			}
		}
	}
	b, err := os.ReadFile(repoPath(t, chartDir+"/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := prefix + k
			seen[key] = true
			if documented[key] {
				continue
			}
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(key+".", sub)
				continue
			}
			t.Errorf("value %s is not in the README's values table", key)
		}
	}
	walk("", values)
	for key := range documented {
		if !seen[key] {
			t.Errorf("README documents %s, which values.yaml does not have", key)
		}
	}
}

// apply applies a manifest to the test API server with server-side apply (for real), taking
// over fields another test's release set (the CRDs are shared by every test).
func apply(t *testing.T, manifest string) {
	t.Helper()
	kubectl(t, []byte(manifest), "apply", "--server-side", "--force-conflicts", "--field-manager=qwen-install-test", "-f", "-")
}

// checkCan asks the API server, with a SubjectAccessReview, whether the ServiceAccount user
// ("system:serviceaccount:<ns>:<name>") may do verb on resource ("plural.group", "plural" for
// the core group, or a non-resource URL starting with /) in namespace ("" = cluster scope).
// A review needs no discovery, so it also works for kinds whose CRDs are not installed.
func checkCan(t *testing.T, user, namespace string, want bool, verb, resource string, subresource ...string) {
	t.Helper()
	saNamespace := strings.Split(user, ":")[2]
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   user,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + saNamespace, "system:authenticated"},
	}}
	if strings.HasPrefix(resource, "/") {
		sar.Spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: resource, Verb: verb}
	} else {
		plural, group, _ := strings.Cut(resource, ".")
		sar.Spec.ResourceAttributes = &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: verb, Group: group, Resource: plural, Subresource: strings.Join(subresource, ""),
		}
	}
	if err := env.Client.Create(context.Background(), sar); err != nil {
		t.Fatalf("SubjectAccessReview: %v", err)
	}
	if sar.Status.Allowed != want {
		t.Errorf("%s may %s %s %v in %q: %v (%s), want %v", user, verb, resource, subresource, namespace, sar.Status.Allowed, sar.Status.Reason, want)
	}
}

// checkRules checks that user may do every verb of each rule on each of its resources.
func checkRules(t *testing.T, user string, rules []rbacv1.PolicyRule) {
	t.Helper()
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				resource, sub, _ := strings.Cut(res, "/")
				if g != "" {
					resource += "." + g
				}
				for _, verb := range r.Verbs {
					checkCan(t, user, "default", true, verb, resource, sub)
				}
			}
		}
	}
}

// equalRules compares rule lists, treating nil and empty alike.
func equalRules(a, b []rbacv1.PolicyRule) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// selects reports whether every selector label is set on labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// yamlFiles reads the *.yaml files of dir by name.
func yamlFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(m)] = b
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
