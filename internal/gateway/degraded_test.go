package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
)

// TestDegradedAnswersIdentifiable sends chat and text completions, whole and streamed,
// through the gateway to a real simulator at every level, and checks what a program reads
// to tell a degraded answer from a real one: X-Qwen-Upstream, X-Qwen-Degradation-Level and
// system_fingerprint (every chunk of a stream carries it). At L4 the static reply answers,
// with 200 or 503 as configured; either way qwen_gateway_requests_total counts it under
// upstream="static", which the ErrorRate signal never counts as an error.
func TestDegradedAnswersIdentifiable(t *testing.T) {
	sim := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B", Mode: "echo"})
	fb := simulator.Start(t, simulator.Options{Model: "Qwen3-0.6B", Mode: "echo"})
	base := fmt.Sprintf("upstream: {url: %q, model: Qwen3-1.7B}\nfallback: {url: %q, model: Qwen3-0.6B}\n", sim.URL, fb.URL)
	tg := startGateway(t, nil, base)

	type answer struct {
		status             int
		upstream, level    string
		fingerprints       []string // of the body, or of each chunk of a stream
		contentType, error string
	}
	send := func(t *testing.T, path string, stream bool) answer {
		t.Helper()
		body := `{"model":"Qwen3-1.7B","max_tokens":5,"messages":[{"role":"user","content":"hi there"}]`
		if path == "/v1/completions" {
			body = `{"model":"Qwen3-1.7B","max_tokens":5,"prompt":"hi there"`
		}
		if stream {
			body += `,"stream":true`
		}
		resp := tg.post(t, path, body+"}")
		b := readAll(t, resp)
		a := answer{status: resp.StatusCode, upstream: resp.Header.Get("X-Qwen-Upstream"), level: resp.Header.Get("X-Qwen-Degradation-Level"),
			contentType: resp.Header.Get("Content-Type")}
		docs := []string{b}
		if strings.HasPrefix(a.contentType, "text/event-stream") {
			docs = nil
			for _, d := range sseData(b) {
				if d != "[DONE]" {
					docs = append(docs, d)
				}
			}
		}
		for _, d := range docs {
			var m map[string]any
			if err := json.Unmarshal([]byte(d), &m); err != nil {
				t.Fatalf("%s: not JSON: %q", path, d)
			}
			if e, ok := m["error"].(map[string]any); ok {
				a.error = fmt.Sprint(e["code"])
				continue
			}
			fp, _ := m["system_fingerprint"].(string)
			a.fingerprints = append(a.fingerprints, fp)
		}
		return a
	}
	// The simulator sets no system_fingerprint: a real answer has none.
	for _, tc := range []struct {
		name            string
		config          string
		upstream, level string
		fingerprint     string
		status          int
		error           string
	}{
		{"L0", "", "primary", "", "", 200, ""},
		{"L1", "degradation: {level: 1}\n", "primary", "1", "qwen-degraded-l1", 200, ""},
		{"L2", "degradation: {level: 2}\n", "primary", "2", "qwen-degraded-l2", 200, ""},
		{"L3", "degradation: {level: 3}\n", "fallback", "3", "qwen-degraded-l3", 200, ""},
		{"L4 static 200", "degradation: {level: 4, staticResponse: {message: busy, httpStatus: 200}}\n", "static", "4", "qwen-static", 200, ""},
		{"L4 static 503", "degradation: {level: 4, staticResponse: {message: busy, httpStatus: 503}}\n", "static", "4", "", 503, "degraded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tg.Load([]byte(base + tc.config)); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"/v1/chat/completions", "/v1/completions"} {
				for _, stream := range []bool{false, true} {
					a := send(t, path, stream)
					if a.status != tc.status || a.upstream != tc.upstream || a.level != tc.level || a.error != tc.error {
						t.Errorf("%s stream=%v: %+v", path, stream, a)
					}
					if tc.status != 200 {
						continue
					}
					if len(a.fingerprints) == 0 {
						t.Errorf("%s stream=%v: no completion: %+v", path, stream, a)
					}
					for _, fp := range a.fingerprints {
						if fp != tc.fingerprint {
							t.Errorf("%s stream=%v: system_fingerprint %q, want %q", path, stream, fp, tc.fingerprint)
						}
					}
				}
			}
		})
	}
	// Four requests per level; L4's static replies count under upstream="static".
	for _, c := range []struct {
		code, level, upstream string
		want                  float64
	}{
		{"200", "0", "primary", 4}, {"200", "3", "fallback", 4}, {"200", "4", "static", 4}, {"503", "4", "static", 4},
	} {
		if got := waitMetric(t, tg.Gateway, c.want, "qwen_gateway_requests_total", "code", c.code, "level", c.level, "upstream", c.upstream); got != c.want {
			t.Errorf("requests_total{code=%s,level=%s,upstream=%s} = %v, want %v", c.code, c.level, c.upstream, got, c.want)
		}
	}
	// A request refused before it is routed names no upstream.
	readAll(t, tg.post(t, "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`))
	if got := waitMetric(t, tg.Gateway, 1, "qwen_gateway_requests_total", "code", "404", "upstream", ""); got != 1 {
		t.Errorf("requests_total{code=404,upstream=\"\"} = %v", got)
	}
}
