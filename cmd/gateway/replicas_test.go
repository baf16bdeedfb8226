package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/proc"
	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

// TestReplicasShareExactLimits runs 4 real gateway processes sharing one Redis behind a
// client that spreads every client's requests over them, and checks, for every algorithm,
// that a client flooding them gets its requests limit, its tokens limit and its concurrency
// limit: never more, and at least 99% of it.
//
// Decisions are on the Redis server's clock, as in production, so the bound a limit sets
// depends on the time the flood took: exactly the limit for the window algorithms when the
// flood stays within one aligned minute (which the test reads from Redis's TIME), plus what
// a bucket refills meanwhile (limit × elapsed / 1 min) for the bucket algorithms.
func TestReplicasShareExactLimits(t *testing.T) {
	rs := redisserver.Start(t)
	eng := newHoldingEngine(t)
	const (
		rpm      = 300   // requests per minute
		tpm      = 20000 // tokens per minute
		conc     = 8     // concurrent requests of the "conc-" clients
		replicas = 4
	)
	for _, alg := range []string{"TokenBucket", "SlidingWindow", "FixedWindow", "LeakyBucket", "Hybrid"} {
		t.Run(alg, func(t *testing.T) {
			cfg := fmt.Sprintf(`listen: 127.0.0.1:0
adminListen: 127.0.0.1:0
upstream: {url: %q, model: Qwen3-1.7B}
rateLimit:
  policy: p
  algorithm: %s
  key: {source: Header, header: X-User-Id}
  limits: {requestsPerMinute: %d, tokensPerMinute: %d, maxConcurrentRequests: 100000}
  overrides: [{name: conc, keys: [conc-%s], limits: {maxConcurrentRequests: %d}}]
  redis: {address: %q}
  # A decision that misses its deadline on a busy machine must not admit (FailOpen would):
  # this test is about exactness, so it fails closed with a deadline nothing here reaches.
  failureMode: FailClosed
  backendTimeout: 5s
`, eng.URL, alg, rpm, tpm, alg, conc, rs.Addr())
			path := filepath.Join(t.TempDir(), "config.yaml")
			must(t, os.WriteFile(path, []byte(cfg), 0o644))
			var gws []string
			for range replicas {
				gws = append(gws, startGatewayProcess(t, path))
			}
			c := &spreader{gateways: gws, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
			// Before the gateways stop: a connection the transport dialed but never used is
			// new to the server, which waits 5 s for it to send a request.
			t.Cleanup(c.client.CloseIdleConnections)

			// requests: small requests (9 tokens each: 8 of prompt, max_tokens 1), 16 callers
			t0 := redisTime(t, rs)
			admitted := c.flood(t, "req-"+alg, smallChat, 16, 3*rpm)
			t1 := redisTime(t, rs)
			lo, hi := bounds(alg, rpm, t0, t1)
			t.Logf("requests: %d of %d admitted in %v (bounds [%d, %d])", admitted, 3*rpm, t1.Sub(t0).Round(time.Millisecond), lo, hi)
			if admitted < lo || admitted > hi {
				t.Errorf("requests: %d admitted, want within [%d, %d]", admitted, lo, hi)
			}

			// tokens: 100 tokens per request (8 of prompt, max_tokens 92), reported as used,
			// against a 60 s sliding window (token quotas always use one)
			t0 = redisTime(t, rs)
			admitted = c.flood(t, "tok-"+alg, bigChat, 16, 3*tpm/100)
			t1 = redisTime(t, rs)
			lo, hi = bounds("SlidingWindow", tpm/100, t0, t1)
			t.Logf("tokens: %d requests of 100 tokens of %d admitted (bounds [%d, %d])", admitted, 3*tpm/100, lo, hi)
			if admitted < lo || admitted > hi {
				t.Errorf("tokens: %d×100 admitted, want within [%d, %d]×100", admitted, lo, hi)
			}

			// concurrency: 3×conc requests at once, the engine holding every one it gets
			eng.hold()
			var held, rejected atomic.Int64
			var wg sync.WaitGroup
			for i := range 3 * conc {
				wg.Go(func() {
					switch code := c.do(t, i, "conc-"+alg, smallChat); code {
					case 200:
						held.Add(1)
					case 429:
						rejected.Add(1)
					default:
						t.Errorf("concurrency: status %d", code)
					}
				})
			}
			eng.waitHeldOrRejected(t, conc, &rejected, 2*conc)
			inEngine := eng.inFlight()
			eng.release()
			wg.Wait()
			t.Logf("concurrency: %d in the engine at once, %d rejected, limit %d", inEngine, rejected.Load(), conc)
			if inEngine != conc || held.Load() != conc || rejected.Load() != 2*conc {
				t.Errorf("concurrency: %d in flight, %d admitted, %d rejected; want exactly %d, %d and %d",
					inEngine, held.Load(), rejected.Load(), conc, conc, 2*conc)
			}
		})
	}
}

// bounds are the fewest and most admissions of a fresh client flooding a limit of limit per
// minute under alg between the server instants t0 and t1.
func bounds(alg string, limit int64, t0, t1 time.Time) (lo, hi int64) {
	lo = limit * 99 / 100
	refill := (limit*int64(t1.Sub(t0)) + int64(time.Minute) - 1) / int64(time.Minute)
	sameWindow := t0.Truncate(time.Minute).Equal(t1.Truncate(time.Minute))
	switch {
	case alg == "FixedWindow" && !sameWindow:
		return lo, 2 * limit
	case (alg == "SlidingWindow" || alg == "FixedWindow" || alg == "Hybrid") && sameWindow:
		return lo, limit
	default: // the buckets; a sliding window crossing a boundary grants at most as much
		return lo, limit + refill
	}
}

// spreader sends each request to the next gateway in turn.
type spreader struct {
	gateways []string
	client   *http.Client
	next     atomic.Int64
}

const (
	smallChat = `{"model":"Qwen3-1.7B","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`
	bigChat   = `{"model":"Qwen3-1.7B","max_tokens":92,"messages":[{"role":"user","content":"hi"}]}`
)

// do sends one chat request as user through gateway i mod N and returns the status.
func (s *spreader) do(t *testing.T, i int, user, body string) int {
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.gateways[i%len(s.gateways)]+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-User-Id", user)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// flood sends attempts requests as user from callers goroutines, spread over the gateways,
// and returns how many were admitted.
func (s *spreader) flood(t *testing.T, user, body string, callers, attempts int) int64 {
	var admitted, n atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for {
				i := n.Add(1)
				if i > int64(attempts) {
					return
				}
				switch code := s.do(t, int(s.next.Add(1)), user, body); code {
				case 200:
					admitted.Add(1)
				case 429:
				default:
					t.Errorf("status %d", code)
					return
				}
			}
		})
	}
	wg.Wait()
	return admitted.Load()
}

// startGatewayProcess starts this test binary as a gateway on a free port with the config
// file, waits until it is ready and stops it (SIGTERM) when the test ends.
func startGatewayProcess(t *testing.T, config string) string {
	t.Helper()
	port, err := proc.FreePort()
	must(t, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logs := &proc.Log{}
	cmd := exec.Command(os.Args[0], "--config", config, "--listen", addr, "--log-level", "warn", "--shutdown-delay", "0s")
	// a race-instrumented binary sleeps 1 s on exit unless told not to
	cmd.Env = append(os.Environ(), childEnv+"=1", "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test process
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("gateway process exited: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway process on %s not ready\n%s", addr, logs)
		}
		time.Sleep(20 * time.Millisecond) // polling another process's readiness
	}
}

// redisTime is the Redis server's clock, the one the gateways decide on.
func redisTime(t *testing.T, rs *redisserver.Server) time.Time {
	t.Helper()
	m := rs.MustDo("TIME")
	parts, err := m.AsStrSlice()
	if err != nil || len(parts) != 2 {
		t.Fatalf("TIME: %v %v", parts, err)
	}
	sec, _ := strconv.ParseInt(parts[0], 10, 64)
	usec, _ := strconv.ParseInt(parts[1], 10, 64)
	return time.Unix(sec, usec*1000)
}

// holdingEngine answers chat completions at once, reporting as used exactly the tokens the
// gateway estimated (a prompt token per 4 bytes of messages, and max_tokens), or, while
// holding, keeps every request until released.
type holdingEngine struct {
	URL     string
	mu      sync.Mutex
	holding bool
	gate    chan struct{}
	waiting atomic.Int64
}

func newHoldingEngine(t *testing.T) *holdingEngine {
	e := &holdingEngine{gate: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			MaxTokens int             `json:"max_tokens"`
			Messages  json.RawMessage `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		prompt := max(len(body.Messages)/4, 1) // the gateway's estimate
		e.mu.Lock()
		holding, gate := e.holding, e.gate
		e.mu.Unlock()
		if holding {
			e.waiting.Add(1)
			<-gate
			e.waiting.Add(-1)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c","object":"chat.completion","created":1,"model":"Qwen3-1.7B","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`,
			prompt, body.MaxTokens, prompt+body.MaxTokens)
	}))
	t.Cleanup(func() {
		e.mu.Lock()
		if e.holding {
			e.holding = false
			close(e.gate)
		}
		e.mu.Unlock()
		srv.Close()
	})
	e.URL = srv.URL
	return e
}

func (e *holdingEngine) hold() {
	e.mu.Lock()
	e.holding, e.gate = true, make(chan struct{})
	e.mu.Unlock()
}

func (e *holdingEngine) release() {
	e.mu.Lock()
	e.holding = false
	close(e.gate)
	e.mu.Unlock()
}

func (e *holdingEngine) inFlight() int64 { return e.waiting.Load() }

// waitHeldOrRejected waits until the engine holds held requests and rejected has reached
// want: every request has then been decided.
func (e *holdingEngine) waitHeldOrRejected(t *testing.T, held int64, rejected *atomic.Int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for e.inFlight() < held || rejected.Load() < want {
		if time.Now().After(deadline) {
			t.Errorf("after 30s: %d requests held by the engine, %d rejected", e.inFlight(), rejected.Load())
			return
		}
		time.Sleep(5 * time.Millisecond) // polling the requests' progress
	}
}
