package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/qwenops/qwen-operator/internal/gateway/breaker"
)

// streamEngine is an upstream that streams chunks of the given content size until the client
// goes away or count chunks were sent (0: forever), then calls end. A request that does not
// ask for a stream gets a small whole completion.
func streamEngine(t *testing.T, size, count int, end func(w http.ResponseWriter)) *httptest.Server {
	t.Helper()
	chunk := fmt.Sprintf(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":%q}}]}`+"\n\n", strings.Repeat("x", size))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(b), `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; count == 0 || i < count; i++ {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
		end(w)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func sendDone(w http.ResponseWriter) { io.WriteString(w, "data: [DONE]\n\n") }

const streamBody = `{"model":"Qwen3-1.7B","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`

// blockingWriter is a client that stops reading: its n-th Write blocks until release is
// closed, after telling blocked.
type blockingWriter struct {
	*httptest.ResponseRecorder
	mu      sync.Mutex
	writes  int
	n       int
	blocked chan struct{}
	release chan struct{}
}

func (w *blockingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	block := w.writes == w.n
	w.mu.Unlock()
	if block {
		close(w.blocked)
		<-w.release
	}
	return w.ResponseRecorder.Write(b)
}

// countingWriter is a client that tells reached once n data lines were written to it.
type countingWriter struct {
	*httptest.ResponseRecorder
	mu      sync.Mutex
	data    int
	n       int
	reached chan struct{}
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.HasPrefix(string(b), "data:") {
		if w.data++; w.data == w.n {
			close(w.reached)
		}
	}
	return w.ResponseRecorder.Write(b)
}

// TestSlowReaderIsNotAnEngineFailure: while the gateway waits on a client that does not read,
// the upstream idle timer is stopped; however long the client takes (the fake clock is stepped
// far past the idle timeout), the stream ends whole and the breaker counts no failure.
func TestSlowReaderIsNotAnEngineFailure(t *testing.T) {
	engine := streamEngine(t, 8, 5, sendDone)
	timers := clocktesting.NewFakeClock(time.Now())
	g := New(Options{Logger: quietLogger(), Timers: timers})
	if err := g.Load([]byte(fmt.Sprintf("upstream: {url: %q, model: m}\nmodels: [Qwen3-1.7B]\ntimeouts: {idle: 1s}\nbreaker: {failureThreshold: 1}\n", engine.URL))); err != nil {
		t.Fatal(err)
	}
	w := &blockingWriter{ResponseRecorder: httptest.NewRecorder(), n: 2, blocked: make(chan struct{}), release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(streamBody)))
	}()
	<-w.blocked
	if timers.HasWaiters() {
		t.Fatal("the upstream idle timer runs while the gateway waits for the client")
	}
	timers.Step(time.Hour)
	close(w.release)
	<-done
	if data := sseData(w.Body.String()); len(data) != 6 || data[5] != "[DONE]" {
		t.Fatalf("stream %q", data)
	}
	if st := g.state.Load().primary.breaker.State(time.Now()); st != breaker.Closed {
		t.Fatalf("breaker %s after a slow client", st)
	}
}

// TestIdleEngineStillTimesOut: the idle timer still ends a read the engine does not answer.
func TestIdleEngineStillTimesOut(t *testing.T) {
	hold := make(chan struct{})
	engine := streamEngine(t, 8, 2, func(http.ResponseWriter) { <-hold })
	defer close(hold)
	timers := clocktesting.NewFakeClock(time.Now())
	g := New(Options{Logger: quietLogger(), Timers: timers})
	if err := g.Load([]byte(fmt.Sprintf("upstream: {url: %q, model: m}\nmodels: [Qwen3-1.7B]\ntimeouts: {idle: 1s}\nbreaker: {failureThreshold: 1}\n", engine.URL))); err != nil {
		t.Fatal(err)
	}
	w := &countingWriter{ResponseRecorder: httptest.NewRecorder(), n: 2, reached: make(chan struct{})}
	done := make(chan any)
	go func() {
		defer func() { done <- recover() }()
		g.ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(streamBody)))
	}()
	// Both chunks have passed (the reads that brought them are over, their timers stopped):
	// the next timer armed is the wait for the third chunk. Stepping any earlier could end
	// the wait for the first two, on a machine slow enough to let the test in between.
	<-w.reached
	for !timers.HasWaiters() {
		runtimeGosched()
	}
	timers.Step(2 * time.Second)
	if p := <-done; p != http.ErrAbortHandler {
		t.Fatalf("panic %v, want the connection aborted", p)
	}
	data := sseData(w.Body.String())
	if len(data) != 3 || !strings.Contains(data[2], `"code":"upstream_timeout"`) {
		t.Fatalf("stream %q, want two chunks and an upstream_timeout error event", data)
	}
	if st := g.state.Load().primary.breaker.State(time.Now()); st != breaker.Open {
		t.Fatalf("breaker %s after an idle engine, want open", st)
	}
}

// TestStuckClientReleasesItsSlot: a client that sends a streaming request and never reads is
// cut off by the client write timeout: its concurrency slot is released and the breaker is
// not told.
func TestStuckClientReleasesItsSlot(t *testing.T) {
	engine := streamEngine(t, 64<<10, 0, sendDone)
	tg := startGateway(t, nil, fmt.Sprintf(`upstream: {url: %q, model: m}
models: [Qwen3-1.7B]
timeouts: {clientWrite: 100ms}
breaker: {failureThreshold: 1}
rateLimit: {policy: p, limits: {maxConcurrentRequests: 1}}
`, engine.URL))
	conn, err := net.Dial("tcp", tg.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(streamBody), streamBody)
	// The stuck request holds the only slot until the write timeout ends it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp := tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","max_tokens":1,"messages":[{}]}`)
		readAll(t, resp)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("the stuck client's slot was not released: %d", resp.StatusCode)
		}
	}
	if st := tg.state.Load().primary.breaker.State(time.Now()); st != breaker.Closed {
		t.Fatalf("breaker %s after a stuck client", st)
	}
}

// TestSlowBodyGets408: a body that does not arrive within timeouts.requestBody is answered
// with 408, and the refusal counts against the client's request limit.
func TestSlowBodyGets408(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, newClock(), basicConfig(e.srv.URL)+"timeouts: {requestBody: 100ms}\nrateLimit: {policy: p, limits: {requestsPerMinute: 1}}\n")
	conn, err := net.Dial("tcp", tg.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if _, _, _, code := openAIError(t, body); resp.StatusCode != http.StatusRequestTimeout || code != "request_timeout" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp := tg.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after the 408: %d, want the limit of 1 used up", resp.StatusCode)
	}
}

// panickyWriter panics on the first body write, as a broken handler path would.
type panickyWriter struct{ *httptest.ResponseRecorder }

func (w panickyWriter) Write([]byte) (int, error) { panic("boom") }

// TestPanicReleasesSlotAndCharge: a panic while serving releases the concurrency slot and
// refunds the token charge no usage was seen for; the connection is aborted.
func TestPanicReleasesSlotAndCharge(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, newClock(), limitConfig(e.srv.URL, "  policy: p\n  limits: {maxConcurrentRequests: 1, tokensPerMinute: 100}\n"))
	body := `{"model":"Qwen3-1.7B","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Fatalf("panic %v, want http.ErrAbortHandler", p)
			}
		}()
		tg.ServeHTTP(panickyWriter{httptest.NewRecorder()}, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body)))
	}()
	// Another request of the same size: the slot is free and the first charge (~54 of 100
	// tokens) was refunded.
	if resp := tg.post(t, "/v1/chat/completions", body); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a panic: %d %s", resp.StatusCode, readAll(t, resp))
	}
}

// TestOddEngineRepliesAtL1: replies the L1 conversion cannot turn into a stream are a 502,
// never a panic, and the request's slot is released.
func TestOddEngineRepliesAtL1(t *testing.T) {
	for _, reply := range []string{
		`{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","tool_calls":[null]}}]}`,
		`{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","tool_calls":[1]}}]}`,
		`{"id":"c","object":"chat.completion","choices":[{"index":0,"message":"text"}]}`,
		`{"id":"c","choices":"none"}`,
		`[]`,
	} {
		engine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, reply)
		}))
		tg := startGateway(t, newClock(), fmt.Sprintf("upstream: {url: %q, model: m}\nmodels: [Qwen3-1.7B]\ndegradation: {level: 1}\nrateLimit: {policy: p, limits: {maxConcurrentRequests: 1}}\n", engine.URL))
		for i := 0; i < 2; i++ {
			resp := tg.post(t, "/v1/chat/completions", streamBody)
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("%s: request %d: %d %s", reply, i, resp.StatusCode, body)
			}
			openAIError(t, body)
		}
		engine.Close()
	}
}

// TestEngineDiesMidStream: when the engine's stream breaks off, the client gets an OpenAI
// error event, no [DONE], and a connection aborted mid-body (not a clean end); the request
// counts as 502 and as a breaker failure, and is charged the chunks it streamed.
func TestEngineDiesMidStream(t *testing.T) {
	for name, end := range map[string]func(http.ResponseWriter){
		"connection dropped": func(w http.ResponseWriter) {
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		},
		"body ended without [DONE]": func(http.ResponseWriter) {},
	} {
		t.Run(name, func(t *testing.T) {
			engine := streamEngine(t, 4, 2, end)
			tg := startGateway(t, newClock(), fmt.Sprintf("upstream: {url: %q, model: m}\nmodels: [Qwen3-1.7B]\nbreaker: {failureThreshold: 1}\n", engine.URL))
			resp := tg.post(t, "/v1/chat/completions", streamBody)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Fatalf("the stream ended cleanly: %q", b)
			}
			data := sseData(string(b))
			if len(data) != 3 || !strings.Contains(data[2], `"code":"upstream_stream_cut"`) {
				t.Fatalf("events %q, want two chunks then an error event", data)
			}
			msg, typ, _, _ := openAIError(t, data[2])
			if typ != "server_error" || !strings.Contains(msg, "incomplete") {
				t.Fatalf("error event %s", data[2])
			}
			if got := waitMetric(t, tg.Gateway, 1, "qwen_gateway_requests_total", "code", "502"); got != 1 {
				t.Errorf("requests_total{code=502} = %v", got)
			}
			if st := tg.state.Load().primary.breaker.State(tg.clock.Now()); st != breaker.Open {
				t.Errorf("breaker %s, want open", st)
			}
		})
	}
}

// TestNonStreamingBodyOverTheCap: a whole response larger than the gateway reads is a 502,
// not a truncated 200.
func TestNonStreamingBodyOverTheCap(t *testing.T) {
	engine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		pad := strings.Repeat("x", 1<<20)
		io.WriteString(w, `{"choices":[{"message":{"content":"`)
		for i := 0; i <= maxUpstreamJSON>>20; i++ {
			io.WriteString(w, pad)
		}
		io.WriteString(w, `"}}]}`)
	}))
	defer engine.Close()
	tg := startGateway(t, nil, fmt.Sprintf("upstream: {url: %q, model: m}\nmodels: [Qwen3-1.7B]\n", engine.URL))
	resp := tg.post(t, "/v1/chat/completions", chatBody)
	body := readAll(t, resp)
	if _, _, _, code := openAIError(t, body); resp.StatusCode != http.StatusBadGateway || code != "upstream_response_too_large" {
		t.Fatalf("%d %.300s", resp.StatusCode, body)
	}
}

// TestDisconnectedStreamIsChargedWhatItStreamed: a client that hangs up before the usage
// chunk is charged a token per streamed chunk, not only its small pre-estimate.
func TestDisconnectedStreamIsChargedWhatItStreamed(t *testing.T) {
	engine := streamEngine(t, 1, 0, sendDone)
	tg := startGateway(t, newClock(), fmt.Sprintf("upstream: {url: %q, model: m}\nmodels: [Qwen3-1.7B]\nrateLimit: {policy: p, limits: {tokensPerMinute: 1000}}\n", engine.URL))
	resp := tg.post(t, "/v1/chat/completions", streamBody) // estimate: 4 + 10 tokens
	rd := bufio.NewReader(resp.Body)
	for n := 0; n < 200; {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			n++
		}
	}
	resp.Body.Close()
	if got := waitMetric(t, tg.Gateway, 0, "qwen_gateway_inflight_requests"); got != 0 {
		t.Fatalf("the disconnected request is still in flight")
	}
	// At least 200 of the 1000 tokens are used: 900 more do not fit.
	resp = tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","max_tokens":890,"messages":[{}]}`)
	if b := readAll(t, resp); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after a 200-chunk stream cut short: %d %s", resp.StatusCode, b)
	}
}

// TestMaxTokensParameters: 0 is refused for either max; max_completion_tokens wins over
// max_tokens; n and best_of multiply the estimate.
func TestMaxTokensParameters(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	e.release = make(chan struct{})
	tg := startGateway(t, newClock(), limitConfig(e.srv.URL, "  policy: p\n  limits: {tokensPerMinute: 250}\n"))
	for _, tt := range []struct{ body, param string }{
		{`{"model":"Qwen3-1.7B","messages":[{}],"max_completion_tokens":0,"max_tokens":10}`, "max_completion_tokens"},
		{`{"model":"Qwen3-1.7B","messages":[{}],"max_tokens":0}`, "max_tokens"},
		{`{"model":"Qwen3-1.7B","messages":[{}],"n":0}`, "n"},
		{`{"model":"Qwen3-1.7B","prompt":"p","best_of":"2"}`, "best_of"},
	} {
		path := "/v1/chat/completions"
		if strings.Contains(tt.body, "prompt") {
			path = "/v1/completions"
		}
		resp := tg.post(t, path, tt.body)
		body := readAll(t, resp)
		if _, _, param, _ := openAIError(t, body); resp.StatusCode != 400 || param != tt.param {
			t.Errorf("%s: %d %s", tt.body, resp.StatusCode, body)
		}
	}
	// A stream held by the engine keeps its estimate (~14 tokens) charged. Then n=3 of 100
	// tokens (~304, clamped to 250) no longer fits, nor max_completion_tokens 240 hiding behind
	// max_tokens 1; 3 × 70 does.
	held := tg.post(t, "/v1/chat/completions", streamBody)
	defer func() {
		close(e.release)
		readAll(t, held)
	}()
	for _, tt := range []struct {
		body string
		want int
	}{
		{`{"model":"Qwen3-1.7B","n":3,"max_tokens":100,"messages":[{}]}`, 429},
		{`{"model":"Qwen3-1.7B","max_tokens":1,"max_completion_tokens":240,"messages":[{}]}`, 429},
		{`{"model":"Qwen3-1.7B","n":3,"max_tokens":70,"messages":[{}]}`, 200},
	} {
		resp := tg.post(t, "/v1/chat/completions", tt.body)
		if b := readAll(t, resp); resp.StatusCode != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.body, resp.StatusCode, b, tt.want)
		}
	}
}
