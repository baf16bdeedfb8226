package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBadInput sends each kind of bad request through HTTP: each gets an OpenAI-shaped error
// with the right status, and a good request right after still works.
func TestBadInput(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	dir := t.TempDir()
	writeKey(t, dir, "app", "sk-app")
	tg := startGateway(t, nil, basicConfig(e.srv.URL)+"maxRequestBodyBytes: 1024\nauth: {keysDir: "+dir+"}\n")
	auth := []string{"Authorization", "Bearer sk-app"}
	tests := []struct {
		name, method, path, ct, body string
		headers                      []string
		status                       int
		code                         string
	}{
		{name: "malformed JSON", body: `{"model": "Qwen3-1.7B", "messages": [`, headers: auth, status: 400, code: "invalid_json"},
		{name: "wrong content type", ct: "text/plain", body: chatBody, headers: auth, status: 400, code: "unsupported_content_type"},
		{name: "unknown model", body: `{"model":"gpt-4","messages":[{"role":"user","content":"hi"}]}`, headers: auth, status: 404, code: "model_not_found"},
		{name: "oversize body", body: `{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`, headers: auth, status: 413, code: "request_too_large"},
		{name: "oversize chunked body", body: "chunked", headers: auth, status: 413, code: "request_too_large"},
		{name: "missing key", body: chatBody, status: 401, code: "missing_api_key"},
		{name: "invalid key", body: chatBody, headers: []string{"Authorization", "Bearer sk-guess"}, status: 401, code: "invalid_api_key"},
		{name: "stream_options without stream", body: `{"model":"Qwen3-1.7B","messages":[{}],"stream_options":{"include_usage":true}}`, headers: auth, status: 400, code: "invalid_stream_options"},
		{name: "stream_options wrong type", body: `{"model":"Qwen3-1.7B","messages":[{}],"stream":true,"stream_options":"yes"}`, headers: auth, status: 400, code: "invalid_stream_options"},
		{name: "GET on completions", method: "GET", body: "", headers: auth, status: 405, code: "method_not_allowed"},
		{name: "unknown path", path: "/v1/audio/speech", body: chatBody, headers: auth, status: 404, code: "unknown_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path, ct := tt.method, tt.path, tt.ct
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = "/v1/chat/completions"
			}
			if ct == "" {
				ct = "application/json"
			}
			var req *http.Request
			if tt.body == "chunked" { // no Content-Length: the limit applies while reading
				req, _ = http.NewRequest(method, tg.srv.URL+path, struct{ *strings.Reader }{strings.NewReader(strings.Repeat(" ", 4096) + chatBody)})
			} else {
				req, _ = http.NewRequest(method, tg.srv.URL+path, strings.NewReader(tt.body))
			}
			req.Header.Set("Content-Type", ct)
			for i := 0; i+1 < len(tt.headers); i += 2 {
				req.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			_, _, _, code := openAIError(t, body)
			if code != tt.code {
				t.Fatalf("code %v, want %s", code, tt.code)
			}
			if strings.Contains(body, "sk-") {
				t.Fatalf("a key leaked into the reply: %s", body)
			}
			if ok := tg.post(t, "/v1/chat/completions", chatBody, auth...); ok.StatusCode != 200 {
				t.Fatalf("gateway stopped serving: %d", ok.StatusCode)
			}
		})
	}
	if e.calls.Load() != int32(len(tests)) {
		t.Errorf("engine called %d times, want only for the %d good requests", e.calls.Load(), len(tests))
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	g := New(Options{Logger: quietLogger()})
	rec := func(path string) int {
		w := newRecorder()
		g.ServeHTTP(w, mustRequest("GET", path))
		return w.Code
	}
	admin := func(path string) int {
		w := newRecorder()
		g.Admin().ServeHTTP(w, mustRequest("GET", path))
		return w.Code
	}
	if rec("/readyz") != 503 || rec("/healthz") != 200 {
		t.Fatal("unconfigured gateway must be live but not ready")
	}
	e := newFakeEngine(t, "m")
	if err := g.Load([]byte("upstream: {url: '" + e.srv.URL + "', model: m}\n")); err != nil {
		t.Fatal(err)
	}
	if rec("/readyz") != 200 || admin("/readyz") != 200 || admin("/metrics") != 200 {
		t.Fatal("configured gateway not ready")
	}
	// The API port, which the Ingress routes, does not serve the metrics.
	if rec("/metrics") != 404 || rec("/debug/pprof/") != 404 {
		t.Fatal("the API port serves /metrics or pprof")
	}
	g.SetReady(false)
	if rec("/readyz") != 503 || admin("/readyz") != 503 {
		t.Fatal("draining gateway still ready")
	}
	for _, body := range []string{`{"model":"m","messages":[{}]}`, `{"model":"m","stream":true,"messages":[{}]}`} {
		r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
		g.ServeHTTP(newRecorder(), r)
	}
	w := newRecorder()
	g.Admin().ServeHTTP(w, mustRequest("GET", "/metrics"))
	for _, name := range []string{"requests_total", "request_duration_seconds", "time_to_first_token_seconds", "rate_limited_total",
		"tokens_total", "inflight_requests", "degradation_level", "upstream_circuit_state", "limiter_backend_errors_total", "config_reloads_total"} {
		if !strings.Contains(w.Body.String(), "qwen_gateway_"+name) {
			t.Errorf("metric qwen_gateway_%s missing", name)
		}
	}
}
