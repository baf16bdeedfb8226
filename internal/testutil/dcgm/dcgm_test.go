package dcgm

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
)

// TestExporter sets the GPU over HTTP as hack/demo/gpu-temp does and reads the DCGM series.
func TestExporter(t *testing.T) {
	srv := httptest.NewServer(New("ai", "qwen3-engine-local-0"))
	defer srv.Close()
	g, err := Set(t.Context(), nil, srv.URL, url.Values{"temperature": {"92"}, "memory": {"0.97"}})
	if err != nil || g.Temperature != 92 || g.Pod != "qwen3-engine-local-0" {
		t.Fatalf("set: %+v %v", g, err)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(b)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^DCGM_FI_DEV_GPU_TEMP\{.*namespace="ai",pod="qwen3-engine-local-0",container="engine"\} 92$`),
		regexp.MustCompile(`(?m)^DCGM_FI_DEV_FB_USED\{.*\} 39731$`),
		regexp.MustCompile(`(?m)^DCGM_FI_DEV_FB_FREE\{.*\} 1229$`),
		regexp.MustCompile(`(?m)^DCGM_FI_DEV_GPU_UTIL\{.*\} 35$`),
	} {
		if !want.MatchString(metrics) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	if g, err := Set(t.Context(), nil, srv.URL, url.Values{"pod": {"qwen3-engine-abc"}}); err != nil || g.Pod != "qwen3-engine-abc" || g.Temperature != 92 {
		t.Errorf("moving the GPU to another pod: %+v %v", g, err)
	}
	for _, bad := range []url.Values{{"temperature": {"hot"}}, {"memory": {"1.5"}}, {"utilization": {"-1"}}} {
		if _, err := Set(t.Context(), nil, srv.URL, bad); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}
