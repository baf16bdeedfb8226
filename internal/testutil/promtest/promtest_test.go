package promtest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPrometheusScrapesExporter(t *testing.T) {
	e := NewExporter(t, "ai")
	e.SetGPUTemperature("qwen3-engine-7d4b9c6f5-x2k9p", 71)
	e.SetQueueDepth("qwen3-engine-7d4b9c6f5-x2k9p", 4)
	p := Start(t, e.Target())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	must(t, p.WaitForValue(ctx, `DCGM_FI_DEV_GPU_TEMP{namespace="ai",pod="qwen3-engine-7d4b9c6f5-x2k9p",container="engine"}`, 71))
	must(t, p.WaitForValue(ctx, `vllm:num_requests_waiting{namespace="ai",pod="qwen3-engine-7d4b9c6f5-x2k9p"}`, 4))

	e.SetGPUTemperature("qwen3-engine-7d4b9c6f5-x2k9p", 85)
	must(t, p.WaitForValue(ctx, `DCGM_FI_DEV_GPU_TEMP{pod="qwen3-engine-7d4b9c6f5-x2k9p"}`, 85))

	e.SetExportedLabels(true)
	must(t, p.WaitForValue(ctx, `DCGM_FI_DEV_GPU_TEMP{exported_namespace="ai",exported_pod="qwen3-engine-7d4b9c6f5-x2k9p",pod="nvidia-dcgm-exporter-7xk2p"}`, 85))
	must(t, p.WaitForAbsent(ctx, `DCGM_FI_DEV_GPU_TEMP{pod="qwen3-engine-7d4b9c6f5-x2k9p"}`))

	e.DeletePod("qwen3-engine-7d4b9c6f5-x2k9p")
	must(t, p.WaitForAbsent(ctx, `vllm:num_requests_waiting`))

	p.Stop()
	if _, err := http.Get(p.URL() + "/-/ready"); err == nil {
		t.Fatal("prometheus still answers after Stop")
	}
	e.SetQueueDepth("qwen3-engine-7d4b9c6f5-x2k9p", 9)
	p.Restart()
	must(t, p.WaitForValue(ctx, `vllm:num_requests_waiting`, 9))

	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if err := p.WaitForValue(short, `vllm:num_requests_waiting`, 10); err == nil || !strings.Contains(err.Error(), "last result") {
		t.Fatalf("WaitForValue for a value never served: %v", err)
	}
}

func TestExporterGatewayTraffic(t *testing.T) {
	e := NewExporter(t, "ai")
	e.SetGatewayTraffic("qwen3-gateway-5f6d7c8b9-abcde", 7, 3, 6)
	e.SetGatewayStatic("qwen3-gateway-5f6d7c8b9-abcde", 5)
	body := scrape(t, e)
	body = scrape(t, e) // counters advance per scrape
	for _, want := range []string{
		`qwen_gateway_requests_total{namespace="ai",pod="qwen3-gateway-5f6d7c8b9-abcde",model="Qwen3-1.7B",code="200",level="0",upstream="primary"} 14`,
		`qwen_gateway_requests_total{namespace="ai",pod="qwen3-gateway-5f6d7c8b9-abcde",model="Qwen3-1.7B",code="500",level="0",upstream="primary"} 6`,
		`qwen_gateway_requests_total{namespace="ai",pod="qwen3-gateway-5f6d7c8b9-abcde",model="Qwen3-1.7B",code="503",level="4",upstream="static"} 10`,
		`qwen_gateway_request_duration_seconds_bucket{namespace="ai",pod="qwen3-gateway-5f6d7c8b9-abcde",model="Qwen3-1.7B",le="5"} 0`,
		`qwen_gateway_request_duration_seconds_bucket{namespace="ai",pod="qwen3-gateway-5f6d7c8b9-abcde",model="Qwen3-1.7B",le="10"} 20`,
		`qwen_gateway_request_duration_seconds_count{namespace="ai",pod="qwen3-gateway-5f6d7c8b9-abcde",model="Qwen3-1.7B"} 20`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s in\n%s", want, body)
		}
	}
}

func scrape(t *testing.T, e *Exporter) string {
	t.Helper()
	resp, err := http.Get("http://" + e.Target() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
