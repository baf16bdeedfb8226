// Package scale measures the operator at fleet size against a real kube-apiserver + etcd
// (envtest): the manager binary runs as its own process, so its memory is its own.
package scale

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
	"github.com/qwenops/qwen-operator/internal/testutil/kubetest"
	"github.com/qwenops/qwen-operator/internal/testutil/proc"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// operatorUser is the identity the manager runs as, bound only to the generated ClusterRole
// config/rbac/role.yaml (as the chart binds the operator's ServiceAccount).
const operatorUser = "system:serviceaccount:qwen-system:qwen-operator"

// fleetSize is the number of QwenServices, QWEN_BENCH_SERVICES or 1000.
func fleetSize(b *testing.B) int {
	n := 1000
	if s := os.Getenv("QWEN_BENCH_SERVICES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("QWEN_BENCH_SERVICES=%q: want a positive number", s)
		}
		n = v
	}
	return n
}

// BenchmarkOperator1000QwenServices runs the manager binary (built from ./cmd/manager, or
// QWEN_BENCH_MANAGER) as the least-privileged operator user against its own kube-apiserver +
// etcd, creates 1 000 QwenServices (QWEN_BENCH_SERVICES), each with the RateLimitPolicy and
// the DegradationPlan of config/samples aimed at it, and reports:
//
//   - s-to-children: until every child the renderer makes exists (polled, metadata only);
//   - s-to-settled: until every service's status describes its generation and its enforced
//     policy, and every policy and plan has a status for its generation;
//   - MiB-manager-peak-rss: the manager's VmHWM from /proc/PID/status, and its VmRSS at the end;
//   - the manager's API requests per service by verb, from its client-go metrics, and the
//     etcd writes per service (the benchmark's own creates included) from the API server's;
//   - the CPU seconds the manager, kube-apiserver and etcd used until the children existed.
//
// QWEN_BENCH_MANAGER_ARGS adds manager flags (space-separated). QWEN_BENCH_PPROF=DIR saves
// the manager's CPU profile of the first 30 s and its heap once settled in DIR. Prometheus is a closed
// loopback port, so plans and adaptive rules report it unreachable, as when it is down. Run it
// with -benchtime 1x; it is not part of the tests:
//
//	go test -run '^$' -bench Operator1000 -benchtime 1x -timeout 30m ./test/scale
func BenchmarkOperator1000QwenServices(b *testing.B) {
	n := fleetSize(b)
	bin := managerBinary(b)
	cp := startControlPlane(b)
	m := startManager(b, cp, bin)
	samples := readSamples(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ns := fmt.Sprintf("fleet-%d", i)
		if err := cp.client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		before := m.metrics(b)
		etcdBefore := cp.etcdWrites(b)
		cpuBefore := cpuSeconds(b, m.cmd.Process.Pid, cp.apiserverPID, cp.etcdPID)
		cpuProfile := make(chan struct{})
		go func() { defer close(cpuProfile); m.profile(b, "profile", "seconds=30", "cpu.pprof") }()
		start := time.Now()
		createFleet(b, cp.client, ns, n, samples)
		created := time.Since(start)
		expected := expectedChildren(b, cp.client, ns)
		waitChildren(b, cp.client, ns, n, expected)
		children := time.Since(start)
		cpuChildren := cpuSeconds(b, m.cmd.Process.Pid, cp.apiserverPID, cp.etcdPID)
		waitSettled(b, cp.client, ns, n)
		settled := time.Since(start)
		m.profile(b, "heap", "gc=1", "heap.pprof")
		<-cpuProfile
		after := m.metrics(b)
		etcdAfter := cp.etcdWrites(b)
		hwm, rss := memory(b, m.cmd.Process.Pid)

		b.ReportMetric(created.Seconds(), "s-to-create")
		b.ReportMetric(children.Seconds(), "s-to-children")
		b.ReportMetric(settled.Seconds(), "s-to-settled")
		b.ReportMetric(float64(hwm)/(1<<20), "MiB-manager-peak-rss")
		b.ReportMetric(float64(rss)/(1<<20), "MiB-manager-rss-end")
		b.ReportMetric(float64(expected.total()*n), "children")
		for _, verb := range []string{"GET", "PATCH", "POST", "PUT", "DELETE"} {
			b.ReportMetric((after.requests[verb]-before.requests[verb])/float64(n), verb+"/service")
		}
		b.ReportMetric((after.reconciles-before.reconciles)/float64(n), "reconciles/service")
		b.ReportMetric((etcdAfter-etcdBefore)/float64(n), "etcd-writes/service")
		names := []string{"manager", "apiserver", "etcd"}
		for j := range cpuChildren {
			b.ReportMetric(cpuChildren[j]-cpuBefore[j], "cpu-s-"+names[j])
		}
		b.Logf("%d services, %d children each (%v); manager log tail:\n%s", n, expected.total(), expected, tail(m.log.String(), 2000))
	}
}

// BenchmarkApply1000QwenServicesFloor is the floor under BenchmarkOperator1000QwenServices:
// no manager runs; the benchmark itself creates the same QwenServices, renders each one as
// the operator would and server-side applies its children from 16 goroutines, unthrottled.
// Its s-to-children is what the API server and etcd need for the objects alone, on the same
// cores.
//
//	go test -run '^$' -bench Apply1000 -benchtime 1x -timeout 30m ./test/scale
func BenchmarkApply1000QwenServicesFloor(b *testing.B) {
	n := fleetSize(b)
	cp := startControlPlane(b)
	samples := readSamples(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ns := fmt.Sprintf("floor-%d", i)
		if err := cp.client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		cpuBefore := cpuSeconds(b, cp.apiserverPID, cp.etcdPID)
		start := time.Now()
		createFleet(b, cp.client, ns, n, samples)
		created := time.Since(start)
		applyFleet(b, cp.client, ns)
		expected := expectedChildren(b, cp.client, ns)
		waitChildren(b, cp.client, ns, n, expected)
		children := time.Since(start)
		cpu := cpuSeconds(b, cp.apiserverPID, cp.etcdPID)
		b.ReportMetric(created.Seconds(), "s-to-create")
		b.ReportMetric(children.Seconds(), "s-to-children")
		b.ReportMetric(float64(expected.total()*n), "children")
		b.ReportMetric(cpu[0]-cpuBefore[0], "cpu-s-apiserver")
		b.ReportMetric(cpu[1]-cpuBefore[1], "cpu-s-etcd")
	}
}

// controlPlane is a kube-apiserver + etcd started for one benchmark.
type controlPlane struct {
	env                   *envtest.Environment
	admin                 *rest.Config
	client                client.Client
	apiserverPID, etcdPID int
	dir                   string
}

// startControlPlane starts kube-apiserver + etcd with the CRDs and a /16 Service range (the
// fleet needs 3 000 Service IPs), stopped when the benchmark ends.
func startControlPlane(b *testing.B) *controlPlane {
	dirs, err := kubetest.CRDDirs()
	if err != nil {
		b.Fatal(err)
	}
	cp := &controlPlane{dir: b.TempDir()}
	cp.env = &envtest.Environment{
		BinaryAssetsDirectory: tools.EnvtestAssets(),
		CRDDirectoryPaths:     dirs,
		ErrorIfCRDPathMissing: true,
		CRDInstallOptions:     envtest.CRDInstallOptions{Scheme: render.NewScheme()},
	}
	cp.env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.96.0.0/16")
	if cp.admin, err = cp.env.Start(); err != nil {
		_ = cp.env.Stop()
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cp.env.Stop() })
	if cp.client, err = client.New(cp.admin, client.Options{Scheme: render.NewScheme()}); err != nil {
		b.Fatal(err)
	}
	cp.apiserverPID, cp.etcdPID = childPID(b, "kube-apiserver"), childPID(b, "etcd")
	return cp
}

// etcdWrites is the API server's count of etcd create, update and delete calls so far.
func (cp *controlPlane) etcdWrites(b *testing.B) float64 {
	hc, err := rest.HTTPClientFor(cp.admin)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := hc.Get(strings.TrimSuffix(cp.admin.Host, "/") + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	var n float64
	for _, s := range parseMetrics(string(body)) {
		if s.name == "etcd_requests_total" {
			switch s.labels["operation"] {
			case "create", "update", "delete", "GuaranteedUpdate":
				n += s.value
			}
		}
	}
	return n
}

// manager is the manager process.
type manager struct {
	cmd         *exec.Cmd
	log         *proc.Log
	metricsAddr string
	pprofAddr   string // empty unless QWEN_BENCH_PPROF names a directory
}

// profile saves the manager's /debug/pprof/<name> (query: e.g. seconds=30) in
// $QWEN_BENCH_PPROF/<file>; it does nothing without QWEN_BENCH_PPROF.
func (m *manager) profile(b *testing.B, name, query, file string) {
	dir := os.Getenv("QWEN_BENCH_PPROF")
	if dir == "" {
		return
	}
	resp, err := http.Get("http://" + m.pprofAddr + "/debug/pprof/" + name + "?" + query)
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, file), body, 0o644)
	}
	if err != nil {
		b.Error(err)
	}
}

// managerBinary is QWEN_BENCH_MANAGER or ./cmd/manager built into a temporary directory.
func managerBinary(b *testing.B) string {
	if p := os.Getenv("QWEN_BENCH_MANAGER"); p != "" {
		return p
	}
	root, err := tools.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "manager")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/manager")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/manager: %v\n%s", err, out)
	}
	return bin
}

// startManager binds the operator's ClusterRole to operatorUser, starts the manager as that
// user and waits until it is ready; it is stopped (SIGTERM) before the control plane.
func startManager(b *testing.B, cp *controlPlane, bin string) *manager {
	root, err := tools.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		b.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: operatorUser}},
	}
	for _, o := range []client.Object{role, binding} {
		if err := cp.client.Create(context.Background(), o); err != nil {
			b.Fatal(err)
		}
	}
	user, err := cp.env.AddUser(envtest.User{Name: operatorUser}, nil)
	if err != nil {
		b.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		b.Fatal(err)
	}
	kubeconfig := filepath.Join(cp.dir, "operator.kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		b.Fatal(err)
	}
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = proc.FreePort(); err != nil {
			b.Fatal(err)
		}
	}
	m := &manager{log: &proc.Log{}, metricsAddr: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	args := []string{"--metrics-bind-address", m.metricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		// nothing listens there: plans and adaptive rules find Prometheus down, on loopback
		"--prometheus-url", fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		"--zap-log-level=error"}
	if os.Getenv("QWEN_BENCH_PPROF") != "" {
		m.pprofAddr = fmt.Sprintf("127.0.0.1:%d", ports[3])
		args = append(args, "--pprof-bind-address", m.pprofAddr)
	}
	args = append(args, strings.Fields(os.Getenv("QWEN_BENCH_MANAGER_ARGS"))...)
	m.cmd = exec.Command(bin, args...)
	// $KUBECONFIG rather than --kubeconfig: the manager then builds its client as it does in
	// a pod (a manager before --kube-api-qps took --kubeconfig's path to a 50/s limit).
	m.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = m.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = m.cmd.Process.Kill()
			<-exited
		}
	})
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1])
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-exited:
			b.Fatalf("the manager exited: %s", m.log)
		default:
		}
		if resp, err := http.Get(readyz); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the manager was not ready within 2 minutes: %s", m.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return m
}

// managerMetrics are the manager's counters that the benchmark reports.
type managerMetrics struct {
	requests   map[string]float64 // by HTTP method
	reconciles float64            // QwenService reconciles
}

// metrics scrapes the manager's metrics endpoint.
func (m *manager) metrics(b *testing.B) managerMetrics {
	resp, err := http.Get("http://" + m.metricsAddr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	out := managerMetrics{requests: map[string]float64{}}
	for _, s := range parseMetrics(string(body)) {
		switch {
		case s.name == "rest_client_requests_total":
			out.requests[s.labels["method"]] += s.value
		case s.name == "controller_runtime_reconcile_total" && s.labels["controller"] == "qwenservice":
			out.reconciles += s.value
		}
	}
	return out
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics reads the samples of a Prometheus text exposition (label values without
// escaped quotes or commas, as the counters read here have).
func parseMetrics(text string) []sample {
	var out []sample
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		s := sample{name: line[:sp], labels: map[string]string{}, value: v}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			for _, kv := range strings.Split(strings.TrimSuffix(s.name[i+1:], "}"), ",") {
				if k, val, ok := strings.Cut(kv, "="); ok {
					s.labels[k] = strings.Trim(val, `"`)
				}
			}
			s.name = s.name[:i]
		}
		out = append(out, s)
	}
	return out
}

// samples are the objects of config/samples.
type samples struct {
	service *v1alpha1.QwenService
	policy  *v1alpha1.RateLimitPolicy
	plan    *v1alpha1.DegradationPlan
}

func readSamples(b *testing.B) samples {
	root, err := tools.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	s := samples{&v1alpha1.QwenService{}, &v1alpha1.RateLimitPolicy{}, &v1alpha1.DegradationPlan{}}
	for file, obj := range map[string]any{
		"serving_v1alpha1_qwenservice.yaml":     s.service,
		"serving_v1alpha1_ratelimitpolicy.yaml": s.policy,
		"serving_v1alpha1_degradationplan.yaml": s.plan,
	} {
		raw, err := os.ReadFile(filepath.Join(root, "config", "samples", file))
		if err != nil {
			b.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(raw, obj); err != nil {
			b.Fatalf("%s: %v", file, err)
		}
	}
	return s
}

// serviceName is the name of the i-th service of the fleet.
func serviceName(i int) string { return fmt.Sprintf("qwen3-%04d", i) }

// createFleet creates n copies of the samples in ns from 8 goroutines: service i gets its
// own Ingress host, and a policy and a plan aimed at it.
func createFleet(b *testing.B, c client.Client, ns string, n int, s samples) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				qs, p, d := s.service.DeepCopy(), s.policy.DeepCopy(), s.plan.DeepCopy()
				qs.Namespace, qs.Name = ns, serviceName(i)
				qs.Spec.Exposure.Ingress.Host = qs.Name + ".example.com"
				p.Namespace, p.Name, p.Spec.TargetRef.Name = ns, qs.Name+"-limits", qs.Name
				d.Namespace, d.Name, d.Spec.TargetRef.Name = ns, qs.Name+"-degrade", qs.Name
				for _, o := range []client.Object{qs, p, d} {
					if err := c.Create(context.Background(), o); err != nil {
						errs <- err
						break
					}
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// applyFleet renders every service of ns as the operator would (no policy or plan in force
// yet) and server-side applies the children from 16 goroutines.
func applyFleet(b *testing.B, c client.Client, ns string) {
	var list v1alpha1.QwenServiceList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(list.Items))
	work := make(chan *v1alpha1.QwenService)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for qs := range work {
				objs, err := render.Render(render.Inputs{Service: qs, Defaults: benchDefaults, HTTPRouteServed: true})
				if err != nil {
					errs <- err
					continue
				}
				for _, o := range objs {
					u, err := render.ToUnstructured(o)
					if err != nil {
						errs <- err
						break
					}
					if err := c.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u),
						client.FieldOwner(render.ManagedBy), client.ForceOwnership); err != nil {
						errs <- err
						break
					}
				}
			}
		}()
	}
	for i := range list.Items {
		work <- &list.Items[i]
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// benchDefaults are the manager's default images, which only the floor renders with.
var benchDefaults = render.Defaults{
	VLLMImage: "vllm/vllm-openai:v0.11.0", SGLangImage: "lmsysorg/sglang:v0.5.4",
	SimulatorImage: "ghcr.io/llm-d/llm-d-inference-sim:v0.10.2", GatewayImage: "ghcr.io/qwenops/qwen-gateway:bench",
}

// childCounts are the children of one service by kind.
type childCounts map[schema.GroupVersionKind]int

func (c childCounts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// expectedChildren renders the first service of ns as the API server defaulted it and counts
// its objects by kind: every service of the fleet has the same shape.
func expectedChildren(b *testing.B, c client.Client, ns string) childCounts {
	qs := &v1alpha1.QwenService{}
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: serviceName(0)}, qs); err != nil {
		b.Fatal(err)
	}
	objs, err := render.Render(render.Inputs{Service: qs, Defaults: benchDefaults, HTTPRouteServed: true})
	if err != nil {
		b.Fatal(err)
	}
	counts, scheme := childCounts{}, render.NewScheme()
	for _, o := range objs {
		gvk, err := apiutil.GVKForObject(o, scheme)
		if err != nil {
			b.Fatal(err)
		}
		counts[gvk]++
	}
	return counts
}

// waitChildren polls (metadata only) until every service of ns has all its children.
func waitChildren(b *testing.B, c client.Client, ns string, n int, per childCounts) {
	deadline := time.Now().Add(15 * time.Minute)
	for {
		missing := 0
		for gvk, k := range per {
			list := &metav1.PartialObjectMetadataList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			if err := c.List(context.Background(), list, client.InNamespace(ns),
				client.MatchingLabels{render.LabelManagedBy: render.ManagedBy}); err != nil {
				b.Fatal(err)
			}
			missing += k*n - len(list.Items)
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d children still missing after 15 minutes", missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitSettled polls until every service's status describes its generation and its enforced
// policy, and every policy and plan has a status for its generation.
func waitSettled(b *testing.B, c client.Client, ns string, n int) {
	deadline := time.Now().Add(15 * time.Minute)
	for {
		pending := 0
		var services v1alpha1.QwenServiceList
		var policies v1alpha1.RateLimitPolicyList
		var plans v1alpha1.DegradationPlanList
		for _, l := range []client.ObjectList{&services, &policies, &plans} {
			if err := c.List(context.Background(), l, client.InNamespace(ns)); err != nil {
				b.Fatal(err)
			}
		}
		for _, qs := range services.Items {
			if qs.Status.ObservedGeneration != qs.Generation || qs.Status.RateLimit == "" {
				pending++
			}
		}
		for _, p := range policies.Items {
			if p.Status.ObservedGeneration != p.Generation {
				pending++
			}
		}
		for _, p := range plans.Items {
			if p.Status.ObservedGeneration != p.Generation {
				pending++
			}
		}
		if pending == 0 && len(services.Items) == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d statuses still pending after 15 minutes", pending)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// childPID finds the process named comm that this process started (envtest's kube-apiserver
// or etcd).
func childPID(b *testing.B, comm string) int {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStat(pid)
		if err != nil || len(f) < 4 || f[1] != "("+comm+")" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[3]); ppid == self {
			return pid
		}
	}
	b.Fatalf("no child process %s", comm)
	return 0
}

// procStat is the fields of /proc/PID/stat (comm without spaces, as for the processes here).
func procStat(pid int) ([]string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(raw)), nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on Linux).
const clockTicks = 100

// cpuSeconds is the user + system CPU time each process has used so far.
func cpuSeconds(b *testing.B, pids ...int) []float64 {
	out := make([]float64, len(pids))
	for i, pid := range pids {
		f, err := procStat(pid)
		if err != nil || len(f) < 15 {
			b.Fatalf("reading /proc/%d/stat: %v", pid, err)
		}
		u, _ := strconv.ParseFloat(f[13], 64)
		s, _ := strconv.ParseFloat(f[14], 64)
		out[i] = (u + s) / clockTicks
	}
	return out
}

// memory is the peak (VmHWM) and current (VmRSS) resident set size of pid, in bytes.
func memory(b *testing.B, pid int) (hwm, rss uint64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		for key, dst := range map[string]*uint64{"VmHWM:": &hwm, "VmRSS:": &rss} {
			if rest, ok := strings.CutPrefix(line, key); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				*dst = kb << 10
			}
		}
	}
	if hwm == 0 {
		b.Fatalf("no VmHWM in /proc/%d/status", pid)
	}
	return hwm, rss
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
