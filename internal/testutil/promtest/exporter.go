package promtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Exporter is an HTTP /metrics endpoint the test controls. It serves, per pod, what the real
// exporters serve once scraped into Prometheus:
//
//   - DCGM exporter GPU metrics (DCGM_FI_DEV_GPU_TEMP, _GPU_UTIL, _FB_USED, _FB_FREE) for GPU
//     0 of the pod, labelled namespace/pod/container (the exporter's pod mapping), or, after
//     SetExportedLabels(true), exported_namespace/exported_pod/exported_container with the
//     exporter's own namespace and pod, as stored when scraped without honor_labels;
//   - engine metrics: the gauges vllm:num_requests_waiting and vllm:kv_cache_usage_perc and the
//     histogram vllm:time_to_first_token_seconds, or, for a pod set with SetSGLang, SGLang's
//     sglang:num_queue_reqs, sglang:token_usage and sglang:time_to_first_token_seconds;
//   - gateway traffic (qwen_gateway_requests_total, qwen_gateway_request_duration_seconds),
//     advanced by a fixed amount on every scrape so rates are steady; static replies
//     (SetGatewayStatic) count in qwen_gateway_requests_total only.
//
// Engine and gateway series carry namespace and pod as Kubernetes service discovery adds
// them. Only values that were set are served.
type Exporter struct {
	srv       *httptest.Server
	namespace string

	mu       sync.Mutex
	exported bool
	gauges   map[seriesKey]float64
	traffic  map[string]*traffic // by gateway pod
	ttft     map[string]*traffic // by engine pod: first tokens per scrape (ok) and their time (latency)
	sglang   map[string]bool     // engine pods that serve SGLang's names
}

// sglangNames are SGLang's names for the vLLM engine metrics the exporter serves.
var sglangNames = map[string]string{
	"vllm:num_requests_waiting":        "sglang:num_queue_reqs",
	"vllm:kv_cache_usage_perc":         "sglang:token_usage",
	"vllm:time_to_first_token_seconds": "sglang:time_to_first_token_seconds",
}

type seriesKey struct{ name, pod string }

type traffic struct {
	ok, failed  int     // requests per scrape with code 200 and 500 from the engine
	static      int     // requests per scrape answered 503 by the gateway's static reply
	latency     float64 // seconds, every request
	okTotal     int     // counters since the start
	failTotal   int
	staticTotal int
}

// GatewayBuckets are the upper bounds of qwen_gateway_request_duration_seconds, as the
// gateway defines them (internal/gateway/metrics.go).
var GatewayBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}

// NewExporter starts an exporter whose pods are in namespace; it stops when the test ends.
func NewExporter(tb testing.TB, namespace string) *Exporter {
	e := &Exporter{namespace: namespace, gauges: map[seriesKey]float64{}, traffic: map[string]*traffic{},
		ttft: map[string]*traffic{}, sglang: map[string]bool{}}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	tb.Cleanup(e.srv.Close)
	return e
}

// Target is the exporter's host:port, for Start.
func (e *Exporter) Target() string { return strings.TrimPrefix(e.srv.URL, "http://") }

// SetExportedLabels switches the DCGM series between pod-mapped labels (false, the default)
// and the exported_* labels of a scrape without honor_labels (true).
func (e *Exporter) SetExportedLabels(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.exported = on
}

// SetGPUTemperature sets DCGM_FI_DEV_GPU_TEMP (°C) of the pod's GPU.
func (e *Exporter) SetGPUTemperature(pod string, celsius float64) {
	e.set("DCGM_FI_DEV_GPU_TEMP", pod, celsius)
}

// SetGPUUtilization sets DCGM_FI_DEV_GPU_UTIL (%) of the pod's GPU.
func (e *Exporter) SetGPUUtilization(pod string, percent float64) {
	e.set("DCGM_FI_DEV_GPU_UTIL", pod, percent)
}

// SetGPUMemory sets DCGM_FI_DEV_FB_USED and DCGM_FI_DEV_FB_FREE (MiB) of the pod's GPU.
func (e *Exporter) SetGPUMemory(pod string, usedMiB, freeMiB float64) {
	e.set("DCGM_FI_DEV_FB_USED", pod, usedMiB)
	e.set("DCGM_FI_DEV_FB_FREE", pod, freeMiB)
}

// SetQueueDepth sets vllm:num_requests_waiting of the engine pod.
func (e *Exporter) SetQueueDepth(pod string, waiting float64) {
	e.set("vllm:num_requests_waiting", pod, waiting)
}

// SetKVCacheUsage sets vllm:kv_cache_usage_perc (0..1) of the engine pod.
func (e *Exporter) SetKVCacheUsage(pod string, fraction float64) {
	e.set("vllm:kv_cache_usage_perc", pod, fraction)
}

// SetSGLang makes the engine pod serve its engine metrics under SGLang's names.
func (e *Exporter) SetSGLang(pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sglang[pod] = true
}

// SetTimeToFirstToken makes the engine pod's vllm:time_to_first_token_seconds histogram (or
// SGLang's) count n more first tokens on every scrape, each after seconds; p95 is then
// interpolated inside that bucket of GatewayBuckets, as for SetGatewayTraffic.
func (e *Exporter) SetTimeToFirstToken(pod string, n int, seconds float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ttft[pod] = &traffic{ok: n, latency: seconds}
}

// SetGatewayTraffic makes the gateway pod's counters advance on every scrape by ok requests
// answered 200 and failed requests answered 500, each taking latency seconds. The error
// rate is then failed/(ok+failed), and the p95 is interpolated inside the latency's bucket
// (see GatewayBuckets): 6s falls in (5, 10], so p95 = 5 + 5×0.95 = 9.75.
func (e *Exporter) SetGatewayTraffic(pod string, ok, failed int, latency float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tr := e.traffic[pod]
	if tr == nil {
		tr = &traffic{}
		e.traffic[pod] = tr
	}
	tr.ok, tr.failed, tr.latency = ok, failed, latency
}

// SetGatewayStatic makes the gateway pod's counters also advance on every scrape by n
// requests answered 503 by the gateway's own static reply (upstream="static"), as a gateway
// at level 4 with a 503 static reply counts them.
func (e *Exporter) SetGatewayStatic(pod string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tr := e.traffic[pod]
	if tr == nil {
		tr = &traffic{}
		e.traffic[pod] = tr
	}
	tr.static = n
}

// DeleteGPU stops serving the DCGM series of the pod; DeletePod stops serving all of its
// series. Prometheus marks them stale at its next scrape.
func (e *Exporter) DeleteGPU(pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.gauges {
		if k.pod == pod && strings.HasPrefix(k.name, "DCGM_") {
			delete(e.gauges, k)
		}
	}
}

// DeletePod stops serving every series of the pod.
func (e *Exporter) DeletePod(pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.gauges {
		if k.pod == pod {
			delete(e.gauges, k)
		}
	}
	delete(e.traffic, pod)
}

func (e *Exporter) set(name, pod string, v float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gauges[seriesKey{name, pod}] = v
}

// serve writes the text exposition format, one family at a time.
func (e *Exporter) serve(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	keys := make([]seriesKey, 0, len(e.gauges))
	for k := range e.gauges {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b seriesKey) int {
		return strings.Compare(a.name+"\x00"+a.pod, b.name+"\x00"+b.pod)
	})
	family := ""
	for _, k := range keys {
		name := e.name(k.name, k.pod)
		if name != family {
			family = name
			fmt.Fprintf(&b, "# TYPE %s gauge\n", name)
		}
		fmt.Fprintf(&b, "%s{%s} %s\n", name, e.labels(k), fmtFloat(e.gauges[k]))
	}
	e.writeTraffic(&b)
	e.writeTTFT(&b)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

// name is the metric name the pod serves for a vLLM engine metric.
func (e *Exporter) name(metric, pod string) string {
	if n, ok := sglangNames[metric]; ok && e.sglang[pod] {
		return n
	}
	return metric
}

// labels renders a series' labels.
func (e *Exporter) labels(k seriesKey) string {
	ns, pod := strconv.Quote(e.namespace), strconv.Quote(k.pod)
	if !strings.HasPrefix(k.name, "DCGM_") {
		return fmt.Sprintf(`namespace=%s,pod=%s,model_name="Qwen3-1.7B"`, ns, pod)
	}
	gpu := `gpu="0",UUID="GPU-5f0c8a4e-0000-4000-8000-000000000000",device="nvidia0",modelName="NVIDIA A100-SXM4-40GB",Hostname="gpu-node-1"`
	if e.exported {
		return fmt.Sprintf(`%s,exported_container="engine",exported_namespace=%s,exported_pod=%s,container="nvidia-dcgm-exporter",namespace="gpu-operator",pod="nvidia-dcgm-exporter-7xk2p"`, gpu, ns, pod)
	}
	return fmt.Sprintf(`%s,container="engine",namespace=%s,pod=%s`, gpu, ns, pod)
}

// advance counts one more scrape's requests of every pod and returns the pods, sorted.
func advance(byPod map[string]*traffic) []string {
	pods := make([]string, 0, len(byPod))
	for pod, tr := range byPod {
		pods = append(pods, pod)
		tr.okTotal += tr.ok
		tr.failTotal += tr.failed
		tr.staticTotal += tr.static
	}
	slices.Sort(pods)
	return pods
}

// writeTraffic advances and writes the gateway counters and histogram.
func (e *Exporter) writeTraffic(b *strings.Builder) {
	pods := advance(e.traffic)
	if len(pods) == 0 {
		return
	}
	ns := strconv.Quote(e.namespace)
	b.WriteString("# TYPE qwen_gateway_requests_total counter\n")
	for _, pod := range pods {
		tr := e.traffic[pod]
		for _, c := range []struct {
			code, level, upstream string
			n                     int
		}{{"200", "0", "primary", tr.okTotal}, {"500", "0", "primary", tr.failTotal}, {"503", "4", "static", tr.staticTotal}} {
			if c.upstream == "static" && tr.static == 0 {
				continue
			}
			fmt.Fprintf(b, "qwen_gateway_requests_total{namespace=%s,pod=%q,model=\"Qwen3-1.7B\",code=%q,level=%q,upstream=%q} %d\n", ns, pod, c.code, c.level, c.upstream, c.n)
		}
	}
	b.WriteString("# TYPE qwen_gateway_request_duration_seconds histogram\n")
	for _, pod := range pods {
		tr := e.traffic[pod]
		writeHistogram(b, "qwen_gateway_request_duration_seconds", fmt.Sprintf("namespace=%s,pod=%q,model=\"Qwen3-1.7B\"", ns, pod),
			tr.okTotal+tr.failTotal, tr.latency)
	}
}

// writeTTFT advances and writes the engines' time-to-first-token histograms.
func (e *Exporter) writeTTFT(b *strings.Builder) {
	for _, pod := range advance(e.ttft) {
		tr := e.ttft[pod]
		name := e.name("vllm:time_to_first_token_seconds", pod)
		fmt.Fprintf(b, "# TYPE %s histogram\n", name)
		writeHistogram(b, name, fmt.Sprintf("namespace=%q,pod=%q,model_name=\"Qwen3-1.7B\"", e.namespace, pod), tr.okTotal, tr.latency)
	}
}

// writeHistogram writes the series of a histogram (buckets GatewayBuckets) that has seen n
// observations, each of value.
func writeHistogram(b *strings.Builder, name, lbl string, n int, value float64) {
	for _, le := range GatewayBuckets {
		count := 0
		if value <= le {
			count = n
		}
		fmt.Fprintf(b, "%s_bucket{%s,le=%q} %d\n", name, lbl, fmtFloat(le), count)
	}
	fmt.Fprintf(b, "%s_bucket{%s,le=\"+Inf\"} %d\n", name, lbl, n)
	fmt.Fprintf(b, "%s_sum{%s} %s\n", name, lbl, fmtFloat(float64(n)*value))
	fmt.Fprintf(b, "%s_count{%s} %d\n", name, lbl, n)
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
