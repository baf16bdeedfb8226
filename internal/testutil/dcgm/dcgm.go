// Package dcgm is a stand-in for NVIDIA's DCGM exporter, for machines without a GPU: it
// serves the DCGM metrics of one simulated GPU as the exporter does with pod mapping (GPU 0
// of one pod, labelled namespace/pod/container) and lets a test or a person set the GPU's
// state over HTTP. The demo's agent serves it on loopback; the cluster tests run it as a pod
// from the image hack/dcgm-exporter builds.
package dcgm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// GPU is the state of the simulated GPU, as the DCGM exporter reports it.
type GPU struct {
	// Temperature in °C (DCGM_FI_DEV_GPU_TEMP).
	Temperature float64 `json:"temperature"`
	// Utilization in % (DCGM_FI_DEV_GPU_UTIL).
	Utilization float64 `json:"utilization"`
	// Memory is the used share of the framebuffer, 0..1 (DCGM_FI_DEV_FB_USED / total).
	Memory float64 `json:"memory"`
	// Namespace and Pod are the pod the GPU is mapped to.
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
}

// MemoryMiB is the simulated framebuffer (an A100 40GB).
const MemoryMiB = 40960

// Idle is a cool, lightly used GPU.
var Idle = GPU{Temperature: 60, Utilization: 35, Memory: 0.5}

// Exporter serves one GPU's DCGM metrics and sets them over HTTP.
type Exporter struct {
	mu  sync.Mutex
	gpu GPU
}

// New returns an exporter of an Idle GPU mapped to namespace/pod.
func New(namespace, pod string) *Exporter {
	g := Idle
	g.Namespace, g.Pod = namespace, pod
	return &Exporter{gpu: g}
}

// GPU returns the current state.
func (e *Exporter) GPU() GPU {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gpu
}

// ServeHTTP serves GET /metrics, GET /gpu (JSON), POST /gpu with any subset of the form
// fields temperature, utilization, memory, namespace and pod, and GET /healthz.
func (e *Exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		io.WriteString(w, "ok\n")
	case r.URL.Path == "/metrics":
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, Metrics(e.GPU()))
	case r.URL.Path == "/gpu" && r.Method == http.MethodPost:
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		g, err := apply(e.gpu, r.Form)
		if err == nil {
			e.gpu = g
		}
		e.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, g)
	case r.URL.Path == "/gpu":
		writeJSON(w, e.GPU())
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.Marshal(v)
	w.Write(append(b, '\n'))
}

// apply sets the fields named in form; numbers out of range are refused, naming the field.
func apply(g GPU, form url.Values) (GPU, error) {
	for _, f := range []struct {
		key      string
		dst      *float64
		min, max float64
	}{{"temperature", &g.Temperature, 0, 150}, {"utilization", &g.Utilization, 0, 100}, {"memory", &g.Memory, 0, 1}} {
		v := form.Get(f.key)
		if v == "" {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) || x < f.min || x > f.max {
			return g, fmt.Errorf("%s=%q: want a number in [%v, %v]", f.key, v, f.min, f.max)
		}
		*f.dst = x
	}
	if v := form.Get("namespace"); v != "" {
		g.Namespace = v
	}
	if v := form.Get("pod"); v != "" {
		g.Pod = v
	}
	return g, nil
}

// Metrics renders g as the DCGM exporter does with pod mapping: GPU 0 of the pod,
// labelled namespace/pod/container.
func Metrics(g GPU) string {
	labels := fmt.Sprintf(`gpu="0",UUID="GPU-00000000-0000-4000-8000-0000000000q3",device="nvidia0",modelName="NVIDIA A100-SXM4-40GB (simulated)",Hostname="qwen-node",namespace=%q,pod=%q,container="engine"`, g.Namespace, g.Pod)
	used := math.Round(g.Memory * MemoryMiB)
	var b strings.Builder
	for _, m := range []struct {
		name, help string
		v          float64
	}{
		{"DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", g.Temperature},
		{"DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", g.Utilization},
		{"DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", used},
		{"DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", MemoryMiB - used},
		{"DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", 60 + 3.4*g.Utilization},
	} {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s{%s} %s\n", m.name, m.help, m.name, m.name, labels,
			strconv.FormatFloat(m.v, 'f', -1, 64))
	}
	return b.String()
}

// Set posts form (any of temperature, utilization, memory, namespace, pod) to the exporter
// at baseURL and returns the GPU's new state.
func Set(ctx context.Context, c *http.Client, baseURL string, form url.Values) (GPU, error) {
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/gpu", strings.NewReader(form.Encode()))
	if err != nil {
		return GPU{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return GPU{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return GPU{}, fmt.Errorf("setting the GPU: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var g GPU
	return g, json.Unmarshal(b, &g)
}
