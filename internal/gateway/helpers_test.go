package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// fakeClock is the injected clock of the tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testGateway is a Gateway served by an httptest server.
type testGateway struct {
	*Gateway
	srv   *httptest.Server
	clock *fakeClock
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startGateway applies the YAML config (with %s replaced by upstream URLs when given).
func startGateway(t testing.TB, clock *fakeClock, config string) *testGateway {
	t.Helper()
	now := time.Now
	if clock != nil {
		now = clock.Now
	}
	g := New(Options{Now: now, Logger: quietLogger()})
	if err := g.Load([]byte(config)); err != nil {
		t.Fatalf("config: %v", err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		srv.Close()
		g.Close()
	})
	return &testGateway{Gateway: g, srv: srv, clock: clock}
}

// post sends a JSON body to path with optional header pairs.
func (tg *testGateway) post(t testing.TB, path, body string, headers ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, tg.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// openAIError decodes an OpenAI error body and checks its shape.
func openAIError(t testing.TB, body string) (msg, typ string, param, code any) {
	t.Helper()
	var e struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == nil {
		t.Fatalf("not an OpenAI error: %q", body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e.Error[k]; !ok {
			t.Fatalf("error lacks %q: %s", k, body)
		}
	}
	msg, _ = e.Error["message"].(string)
	typ, _ = e.Error["type"].(string)
	if msg == "" || typ == "" {
		t.Fatalf("empty message or type: %s", body)
	}
	return msg, typ, e.Error["param"], e.Error["code"]
}

// waitMetric polls a metric until it equals want (the gateway records a request's metrics
// just after its response is sent) or 5 s pass, and returns the last value.
func waitMetric(t testing.TB, g *Gateway, want float64, name string, labels ...string) float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := metricValue(t, g, name, labels...)
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond)
	}
}

func metricValue(t testing.TB, g *Gateway, name string, labels ...string) float64 {
	t.Helper()
	m := findMetric(t, g, name, labels...)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// findMetric returns the first series of the metric name whose labels include the label
// pairs, nil if none.
func findMetric(t testing.TB, g *Gateway, name string, labels ...string) *dto.Metric {
	t.Helper()
	mfs, err := g.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(lp *dto.LabelPair) bool {
					return lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}) {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// fakeEngine is an OpenAI-compatible upstream the test controls exactly. It records the
// bodies it received and answers per its fields.
type fakeEngine struct {
	srv       *httptest.Server
	model     string
	status    atomic.Int32 // non-zero: answer with this status and an error body
	calls     atomic.Int32
	mu        sync.Mutex
	bodies    []map[string]any
	chunks    []string      // stream content pieces
	release   chan struct{} // when set, streams wait on it before the last chunk
	promptTok int64
	complTok  int64
}

func newFakeEngine(t testing.TB, model string) *fakeEngine {
	e := &fakeEngine{model: model, chunks: []string{"Hello", ", ", "world"}, promptTok: 7, complTok: 3}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *fakeEngine) lastBody() map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.bodies) == 0 {
		return nil
	}
	return e.bodies[len(e.bodies)-1]
}

func (e *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	e.calls.Add(1)
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	e.mu.Lock()
	e.bodies = append(e.bodies, body)
	e.mu.Unlock()
	if s := e.status.Load(); s != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(s))
		fmt.Fprintf(w, `{"error":{"message":"injected","type":"server_error","param":null,"code":%d}}`, s)
		return
	}
	model, _ := body["model"].(string)
	chat := r.URL.Path == "/v1/chat/completions"
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, e.promptTok, e.complTok, e.promptTok+e.complTok)
	if stream, _ := body["stream"].(bool); stream {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i, c := range e.chunks {
			if i == len(e.chunks)-1 && e.release != nil {
				<-e.release
			}
			if chat {
				fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", model, c)
			} else {
				fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"text_completion\",\"created\":1,\"model\":%q,\"choices\":[{\"index\":0,\"text\":%q,\"finish_reason\":null}]}\n\n", model, c)
			}
			fl.Flush()
		}
		if so, _ := body["stream_options"].(map[string]any); so["include_usage"] == true {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[],\"usage\":%s}\n\n", model, usage)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		return
	}
	text := strings.Join(e.chunks, "")
	w.Header().Set("Content-Type", "application/json")
	if chat {
		fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q,"reasoning_content":null},"logprobs":null,"finish_reason":"stop"}],"usage":%s}`, model, text, usage)
	} else {
		fmt.Fprintf(w, `{"id":"c1","object":"text_completion","created":1,"model":%q,"choices":[{"index":0,"text":%q,"logprobs":null,"finish_reason":"stop"}],"usage":%s}`, model, text, usage)
	}
}

// sseData returns the data payloads of an event stream.
func sseData(body string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func compact(s string) string {
	var b bytes.Buffer
	json.Compact(&b, []byte(s))
	return b.String()
}

type netipPrefix = netip.Prefix

func mustPrefix(s string) netip.Prefix {
	p, err := gatewayconfig.ParsePrefix(s)
	if err != nil {
		panic(err)
	}
	return p
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustRequest(method, path string) *http.Request { return httptest.NewRequest(method, path, nil) }

func runtimeGosched() { runtime.Gosched() }

// alternate sends n chat requests, one to each gateway in turn, and returns their status codes.
func alternate(t *testing.T, n int, gs ...*testGateway) []int {
	t.Helper()
	var codes []int
	for i := range n {
		resp := gs[i%len(gs)].post(t, "/v1/chat/completions", chatBody)
		readAll(t, resp)
		codes = append(codes, resp.StatusCode)
	}
	return codes
}
