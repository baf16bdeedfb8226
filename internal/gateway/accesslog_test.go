package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
)

// syncBuffer is a bytes.Buffer safe for the gateway's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines waits until the buffer holds n lines (a request's record is written just after its
// response) or 5 s pass, and returns them decoded.
func (s *syncBuffer) lines(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(s.String(), "\n") < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not one JSON object per line: %q", l)
		}
		out = append(out, m)
	}
	if len(out) != n {
		t.Fatalf("%d records, want %d:\n%s", len(out), n, s.String())
	}
	return out
}

// startLoggedGateway is startGateway with an access log into buf.
func startLoggedGateway(t *testing.T, clock *fakeClock, config string, o AccessLog) (*testGateway, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	o.Logger = slog.New(slog.NewJSONHandler(buf, nil))
	g := New(Options{Now: clock.Now, Logger: quietLogger(), AccessLog: o})
	if err := g.Load([]byte(config)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		srv.Close()
		g.Close()
	})
	return &testGateway{Gateway: g, srv: srv, clock: clock}, buf
}

// TestAccessLog sends requests through the gateway to a real simulator with an access log
// and checks one JSON record per request with the fields the docs list: the time the request
// arrived (the injected clock), the key id and a client hash but never the API key, the model,
// level, status, upstream, tokens, latency, time to first token and the limit decision.
func TestAccessLog(t *testing.T) {
	sim := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B", Mode: "echo"})
	dir := t.TempDir()
	const secret = "sk-the-secret-key-1234"
	writeKey(t, dir, "team-a", secret)
	clock := newClock()
	config := fmt.Sprintf("upstream: {url: %q, model: Qwen3-1.7B}\nauth: {keysDir: %q}\n"+
		"rateLimit: {policy: p, key: {source: APIKey}, algorithm: FixedWindow, limits: {requestsPerMinute: 2}}\n", sim.URL, dir)
	tg, buf := startLoggedGateway(t, clock, config, AccessLog{})
	auth := []string{"Authorization", "Bearer " + secret, "X-Request-Id", "req-1"}
	readAll(t, tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","max_tokens":5,"messages":[{"role":"user","content":"hello log"}]}`, auth...))
	readAll(t, tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"stream log"}]}`, auth...))
	readAll(t, tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"over"}]}`, auth...))
	readAll(t, tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"x"}]}`, "Authorization", "Bearer sk-wrong-key-5678"))

	recs := buf.lines(t, 4)
	out := buf.String()
	if strings.Contains(out, secret) || strings.Contains(out, "sk-wrong-key-5678") || strings.Contains(out, "Bearer") {
		t.Fatalf("an API key is in the access log:\n%s", out)
	}
	wantTime := clock.Now().Format(time.RFC3339)
	for i, want := range []map[string]any{
		{"msg": "access", "level": "INFO", "path": "/v1/chat/completions", "request_id": "req-1", "key_id": "team-a", "model": "Qwen3-1.7B",
			"degradation_level": 0.0, "status": 200.0, "upstream": "primary", "limit": "admitted"},
		{"degradation_level": 0.0, "status": 200.0, "upstream": "primary", "limit": "admitted"},
		{"status": 429.0, "upstream": "", "limit": "rejected", "over": []any{"requests"}},
		{"status": 401.0, "upstream": "", "key_id": nil, "client": nil, "limit": nil, "model": ""},
	} {
		r := recs[i]
		for k, v := range want {
			if fmt.Sprint(r[k]) != fmt.Sprint(v) {
				t.Errorf("record %d: %s = %v, want %v\n%v", i, k, r[k], v, r)
			}
		}
		if got, _ := r["time"].(string); !strings.HasPrefix(got, strings.TrimSuffix(wantTime, "Z")) {
			t.Errorf("record %d: time %v, want the arrival %s", i, r["time"], wantTime)
		}
		if _, ok := r["latency_ms"].(float64); !ok {
			t.Errorf("record %d: no latency_ms: %v", i, r)
		}
	}
	for i := range 3 {
		if c, _ := recs[i]["client"].(string); len(c) != 16 || strings.Contains(c, "team-a") {
			t.Errorf("record %d: client %q, want a 16-hex-digit hash", i, c)
		}
	}
	for i := range 2 {
		if recs[i]["prompt_tokens"] == nil || recs[i]["completion_tokens"] == nil || recs[i]["completion_tokens"].(float64) == 0 {
			t.Errorf("record %d: tokens %v", i, recs[i])
		}
	}
	if _, ok := recs[1]["ttft_ms"].(float64); !ok || recs[0]["ttft_ms"] != nil {
		t.Errorf("ttft_ms: whole %v, streamed %v", recs[0]["ttft_ms"], recs[1]["ttft_ms"])
	}
}

// TestAccessLogFilterAndSample checks --access-log=errors (only status >= 400) and
// --access-log-sample=N (one in N of the requests that qualify, from the first), and that
// the access log is off by default.
func TestAccessLogFilterAndSample(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	config := basicConfig(e.srv.URL)
	ok := func(tg *testGateway) { readAll(t, tg.post(t, "/v1/chat/completions", chatBody)) }
	bad := func(tg *testGateway) {
		readAll(t, tg.post(t, "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`))
	}

	tg, buf := startLoggedGateway(t, newClock(), config, AccessLog{ErrorsOnly: true})
	ok(tg)
	bad(tg)
	ok(tg)
	if recs := buf.lines(t, 1); recs[0]["status"] != 404.0 {
		t.Errorf("errors only: %v", recs)
	}

	tg, buf = startLoggedGateway(t, newClock(), config, AccessLog{Sample: 3})
	for range 7 {
		ok(tg)
	}
	buf.lines(t, 3) // the 1st, 4th and 7th

	tg, buf = startLoggedGateway(t, newClock(), config, AccessLog{ErrorsOnly: true, Sample: 2})
	for range 2 {
		ok(tg)
		bad(tg)
	}
	bad(tg)
	buf.lines(t, 2) // the 1st and 3rd of three errors

	g := New(Options{Logger: quietLogger()})
	if g.access != nil {
		t.Error("the access log is on by default")
	}
}
