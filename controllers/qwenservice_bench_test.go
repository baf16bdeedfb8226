package controllers

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
	"github.com/qwenops/qwen-operator/internal/testutil/kubetest"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// benchServices is the fleet size of BenchmarkCreate300QwenServices.
const benchServices = 300

// benchChildren are the kinds and counts of children each benchmark service gets: the seed's
// service with a fallback and an Ingress (12 objects).
var benchChildren = map[schema.GroupVersionKind]int{
	appsv1.SchemeGroupVersion.WithKind("Deployment"):            3,
	corev1.SchemeGroupVersion.WithKind("Service"):               3,
	corev1.SchemeGroupVersion.WithKind("ConfigMap"):             1,
	corev1.SchemeGroupVersion.WithKind("ServiceAccount"):        1,
	rbacv1.SchemeGroupVersion.WithKind("Role"):                  1,
	rbacv1.SchemeGroupVersion.WithKind("RoleBinding"):           1,
	policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"): 1,
	networkingv1.SchemeGroupVersion.WithKind("Ingress"):         1,
}

// BenchmarkCreate300QwenServices creates 300 QwenServices against a real API server with
// the manager running (as the least-privileged operator user), and reports the time until
// every child exists, the time until every status describes its generation, the process's
// peak heap and RSS, and the reconciles it took. The fleet needs 900 Service IPs, more than
// the /24 of the package's control plane, so it starts its own with a /16. It is not part of
// `go test ./...`; run it once per process (a stopped manager's memory is not all returned,
// so -count > 1 inflates the later runs):
//
//	go test -run '^$' -bench Create300 -benchtime 1x ./controllers
func BenchmarkCreate300QwenServices(b *testing.B) {
	cfg, c := startLargeControlPlane(b)
	ctx, cancel := context.WithCancel(context.Background())
	_, stopped, err := startManager(ctx, cfg, c)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); <-stopped }) // runs before the control plane stops
	b.ResetTimer()

	for i := 0; i < b.N; i++ {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i)}}
		if err := c.Create(ctx, ns); err != nil {
			b.Fatal(err)
		}
		reconcilesBefore := reconcileCount(b)
		runtime.GC()
		mem := startMemSampler(100 * time.Millisecond)
		start := time.Now()
		createFleet(b, c, ns.Name)
		created := time.Since(start)
		waitChildren(b, c, ns.Name)
		children := time.Since(start)
		waitStatuses(b, c, ns.Name)
		statuses := time.Since(start)
		peak := mem.stop()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(created.Seconds(), "s-to-create")
		b.ReportMetric(children.Seconds(), "s-to-children")
		b.ReportMetric(statuses.Seconds(), "s-to-status")
		b.ReportMetric(float64(peak.heapInuse)/(1<<20), "MiB-peak-heap-inuse")
		b.ReportMetric(float64(after.HeapInuse)/(1<<20), "MiB-heap-after-gc")
		b.ReportMetric(float64(peak.rss)/(1<<20), "MiB-peak-rss")
		b.ReportMetric(reconcileCount(b)-reconcilesBefore, "reconciles")
	}
}

// startLargeControlPlane starts kube-apiserver + etcd with the CRDs and a /16 Service range,
// stopped when the benchmark ends, and returns its admin config and client.
func startLargeControlPlane(b *testing.B) (*rest.Config, client.Client) {
	dirs, err := kubetest.CRDDirs()
	if err != nil {
		b.Fatal(err)
	}
	e := &envtest.Environment{
		BinaryAssetsDirectory: tools.EnvtestAssets(),
		CRDDirectoryPaths:     dirs,
		ErrorIfCRDPathMissing: true,
		CRDInstallOptions:     envtest.CRDInstallOptions{Scheme: render.NewScheme()},
	}
	e.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.96.0.0/16")
	cfg, err := e.Start()
	if err != nil {
		_ = e.Stop()
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: render.NewScheme()})
	if err != nil {
		b.Fatal(err)
	}
	return cfg, c
}

// createFleet creates benchServices seed-like services in ns from 8 goroutines.
func createFleet(b *testing.B, c client.Client, ns string) {
	var wg sync.WaitGroup
	errs := make(chan error, benchServices)
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				qs := qwen3(ns)
				qs.Name = fmt.Sprintf("qwen3-%03d", i)
				qs.Spec.Exposure.Ingress.Host = qs.Name + ".example.com"
				qs.Spec.Fallback = &v1alpha1.FallbackSpec{Model: v1alpha1.ModelSpec{Name: "Qwen/Qwen3-0.6B"}, Replicas: ptr.To(int32(1))}
				if err := c.Create(context.Background(), qs); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < benchServices; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// waitChildren polls (metadata only) until every service has all its children.
func waitChildren(b *testing.B, c client.Client, ns string) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		missing := 0
		for gvk, per := range benchChildren {
			list := &metav1.PartialObjectMetadataList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			if err := c.List(context.Background(), list, client.InNamespace(ns),
				client.MatchingLabels{render.LabelManagedBy: render.ManagedBy}); err != nil {
				b.Fatal(err)
			}
			missing += per*benchServices - len(list.Items)
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d children still missing after 5 minutes", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStatuses polls until every service's status describes its generation.
func waitStatuses(b *testing.B, c client.Client, ns string) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var list v1alpha1.QwenServiceList
		if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		pending := 0
		for _, qs := range list.Items {
			if qs.Status.ObservedGeneration != qs.Generation {
				pending++
			}
		}
		if pending == 0 && len(list.Items) == benchServices {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d statuses still pending after 5 minutes", pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reconcileCount is controller-runtime's count of QwenService reconciles so far.
func reconcileCount(b *testing.B) float64 {
	families, err := metrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "qwenservice" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// memSampler records the peak heap in use and the peak resident set size of this process.
type memSampler struct {
	done chan struct{}
	out  chan memPeak
}

type memPeak struct{ heapInuse, rss uint64 }

func startMemSampler(every time.Duration) *memSampler {
	s := &memSampler{done: make(chan struct{}), out: make(chan memPeak, 1)}
	go func() {
		var peak memPeak
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak.heapInuse = max(peak.heapInuse, ms.HeapInuse)
			peak.rss = max(peak.rss, rssBytes())
			select {
			case <-s.done:
				s.out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *memSampler) stop() memPeak {
	close(s.done)
	return <-s.out
}

// rssBytes is the VmRSS of this process from /proc/self/status (0 where unavailable).
func rssBytes() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
