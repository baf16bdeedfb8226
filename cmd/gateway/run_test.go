package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
)

// configDir lays out a directory like a ConfigMap volume: config.yaml → ..data/config.yaml,
// ..data → ..<version>; update swaps the ..data symlink atomically, as the kubelet does.
type configDir struct {
	t   *testing.T
	dir string
	n   int
}

func newConfigDir(t *testing.T, content string) *configDir {
	c := &configDir{t: t, dir: t.TempDir()}
	c.update(content)
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), filepath.Join(c.dir, "config.yaml")); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *configDir) path() string { return filepath.Join(c.dir, "config.yaml") }

func (c *configDir) update(content string) {
	c.n++
	version := fmt.Sprintf("..v%d", c.n)
	must(c.t, os.Mkdir(filepath.Join(c.dir, version), 0o755))
	must(c.t, os.WriteFile(filepath.Join(c.dir, version, "config.yaml"), []byte(content), 0o644))
	tmp := filepath.Join(c.dir, "..data_tmp")
	must(c.t, os.Symlink(version, tmp))
	must(c.t, os.Rename(tmp, filepath.Join(c.dir, "..data")))
	if c.n > 1 {
		must(c.t, os.RemoveAll(filepath.Join(c.dir, fmt.Sprintf("..v%d", c.n-1))))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// process is run() in a goroutine with its hooks.
type process struct {
	addr     string
	admin    string
	reloaded chan error
	done     chan error
	cancel   context.CancelFunc
	logs     *syncBuf
}

func start(t *testing.T, ctx context.Context, args ...string) *process {
	t.Helper()
	return startWith(t, ctx, hooks{}, args...)
}

// startWith is start with hooks; ready, admin and reloaded are set here.
func startWith(t *testing.T, ctx context.Context, h hooks, args ...string) *process {
	t.Helper()
	ready, admin := make(chan string, 1), make(chan string, 1)
	p := &process{reloaded: make(chan error, 16), done: make(chan error, 1), logs: &syncBuf{}}
	ctx, p.cancel = context.WithCancel(ctx)
	h.ready, h.admin, h.reloaded = ready, admin, p.reloaded
	go func() { p.done <- run(ctx, args, p.logs, h) }()
	select {
	case p.addr = <-ready:
		p.admin = <-admin
	case err := <-p.done:
		t.Fatalf("gateway exited: %v\n%s", err, p.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway not ready\n%s", p.logs)
	}
	t.Cleanup(func() {
		p.cancel()
		<-p.done
	})
	return p
}

func (p *process) waitReload(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.reloaded:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("no reload seen\n%s", p.logs)
		return nil
	}
}

func chat(t *testing.T, addr string, stream bool) (*http.Response, string) {
	t.Helper()
	body := fmt.Sprintf(`{"model":"Qwen3-1.7B","stream":%v,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, stream)
	resp, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func gatewayConfig(simURL string, level int) string {
	return fmt.Sprintf("listen: 127.0.0.1:0\nadminListen: 127.0.0.1:0\nupstream: {url: %q, model: Qwen3-1.7B}\ndegradation: {level: %d, staticResponse: {message: static-reply}}\n", simURL, level)
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"--config", "a", "--configmap", "ns/n"}, {"--bogus"},
		{"--config", "a", "--gc-headroom-mib", "-1"}, {"--config", "a", "--gc-headroom-mib", "5000"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if err := run(context.Background(), []string{"--configmap", "no-slash", "--kubeconfig", "/nonexistent"}, io.Discard, hooks{}); err == nil {
		t.Error("bad --configmap accepted")
	}
}

func TestInvalidInitialConfigExits(t *testing.T) {
	c := newConfigDir(t, "upstream: {url: 'http://e', model: m}\nbreaker: {failureThreshold: -1}\n")
	err := run(context.Background(), []string{"--config", c.path()}, io.Discard, hooks{})
	if err == nil || !strings.Contains(err.Error(), "breaker.failureThreshold") {
		t.Fatalf("err = %v", err)
	}
}

// TestFileReload swaps the ConfigMap-style symlink: a valid config takes effect, an invalid
// one is rejected and the last good one keeps serving.
func TestFileReload(t *testing.T) {
	sim := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B"})
	c := newConfigDir(t, gatewayConfig(sim.URL, 0))
	p := start(t, context.Background(), "--config", c.path())

	if resp, _ := chat(t, p.addr, false); resp.StatusCode != 200 || resp.Header.Get("X-Qwen-Upstream") != "primary" {
		t.Fatalf("initial: %d %v", resp.StatusCode, resp.Header)
	}
	c.update(gatewayConfig(sim.URL, 4))
	if err := p.waitReload(t); err != nil {
		t.Fatal(err)
	}
	if resp, body := chat(t, p.addr, false); !strings.Contains(body, "static-reply") || resp.Header.Get("X-Qwen-Degradation-Level") != "4" {
		t.Fatalf("after reload to L4: %s", body)
	}
	c.update("upstream: {url: 'http://e', model: m}\nunknownField: 1\n")
	if err := p.waitReload(t); err == nil {
		t.Fatal("invalid config accepted")
	}
	if _, body := chat(t, p.addr, false); !strings.Contains(body, "static-reply") {
		t.Fatalf("last good config not serving: %s", body)
	}
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`qwen_gateway_config_reloads_total{result="failure"} 1`, `qwen_gateway_config_reloads_total{result="success"} 2`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestGracefulShutdown sends SIGTERM (caught as main does) while a stream is in flight: first
// /readyz answers 503 while new requests are still served (the shutdown delay, ended here by
// the test), then the listener closes, the stream still runs to [DONE], and run returns.
func TestGracefulShutdown(t *testing.T) {
	sim := simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B", InterTokenLatency: 20 * time.Millisecond})
	c := newConfigDir(t, gatewayConfig(sim.URL, 0))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	delay, delayAsked := make(chan time.Time), make(chan time.Duration, 1)
	p := startWith(t, ctx, hooks{after: func(d time.Duration) <-chan time.Time { delayAsked <- d; return delay }},
		"--config", c.path(), "--shutdown-timeout", "20s", "--shutdown-delay", "7s")

	body := `{"model":"Qwen3-1.7B","stream":true,"max_tokens":40,"ignore_eos":true,"messages":[{"role":"user","content":"tell a long story"}]}`
	resp, err := http.Post("http://"+p.addr+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	must(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	if d := <-delayAsked; d != 7*time.Second {
		t.Fatalf("shutdown delay %s, want the flag's 7s", d)
	}
	// During the delay: not ready on either port, yet a new connection is served.
	for _, addr := range []string{p.addr, p.admin} {
		if code := getCode(t, "http://"+addr+"/readyz"); code != http.StatusServiceUnavailable {
			t.Fatalf("%s/readyz during the shutdown delay: %d, want 503", addr, code)
		}
	}
	if r, _ := chat(t, p.addr, false); r.StatusCode != http.StatusOK {
		t.Fatalf("a request during the shutdown delay: %d", r.StatusCode)
	}
	close(delay)

	// New connections are refused once the listener is closed (poll: process state).
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after the shutdown delay")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-p.done:
		t.Fatalf("run returned before the stream finished: %v", err)
	default:
	}
	rest, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("stream cut: %v", err)
	}
	chunks := strings.Count(string(rest), "data: {")
	if !strings.HasSuffix(strings.TrimSpace(string(rest)), "data: [DONE]") || chunks < 10 {
		t.Fatalf("stream did not finish: %d chunks, tail %q", chunks, tail(string(rest)))
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the stream finished")
	}
}

// TestShutdownReleasesRedisSlotsBeforeClosing: a stream still running when the shutdown timeout
// ends is cut off, and it releases its Redis concurrency slot before the gateway closes its
// Redis client, so the slot is not held for the lease time.
func TestShutdownReleasesRedisSlotsBeforeClosing(t *testing.T) {
	rs := redisserver.Start(t)
	hold := make(chan struct{})
	defer close(hold)
	engine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	defer engine.Close()
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\nadminListen: 127.0.0.1:0\nupstream: {url: %q, model: Qwen3-1.7B}\n"+
		"rateLimit: {policy: p, limits: {maxConcurrentRequests: 5}, redis: {address: %q}}\n", engine.URL, rs.Addr())
	p := start(t, context.Background(), "--config", newConfigDir(t, cfg).path(), "--shutdown-delay", "0s", "--shutdown-timeout", "100ms")
	resp, err := http.Post("http://"+p.addr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"Qwen3-1.7B","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	slots := func() int64 {
		reply, err := rs.Do("KEYS", "*:cc")
		keys, _ := reply.AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, k := range keys {
			c, err := rs.Do("ZCARD", k)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := c.AsInt64()
			n += v
		}
		return n
	}
	if n := slots(); n != 1 {
		t.Fatalf("%d slots held in Redis during the stream, want 1", n)
	}
	p.cancel()
	if err := <-p.done; err == nil || !strings.Contains(err.Error(), "shutdown") {
		t.Fatalf("run: %v, want the shutdown timeout reported", err)
	}
	p.done <- nil
	if n := slots(); n != 0 {
		t.Fatalf("%d slots still held in Redis after shutdown\n%s", n, p.logs)
	}
}

// TestHeaderAndMetricsPorts: a header block over the cap gets 431, and /metrics is served on
// the admin port only.
func TestHeaderAndMetricsPorts(t *testing.T) {
	c := newConfigDir(t, "listen: 127.0.0.1:0\nadminListen: 127.0.0.1:0\nupstream: {url: 'http://127.0.0.1:1', model: Qwen3-1.7B}\n")
	p := start(t, context.Background(), "--config", c.path())
	for _, size := range []int{100 << 10, 2 << 20} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+"/v1/models", nil)
		req.Header.Set("X-Big", strings.Repeat("x", size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%d-byte header: %v", size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("%d-byte header: %d, want 431", size, resp.StatusCode)
		}
	}
	if code := getCode(t, "http://"+p.addr+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("/metrics on the API port: %d, want 404", code)
	}
	if code := getCode(t, "http://"+p.admin+"/metrics"); code != http.StatusOK {
		t.Fatalf("/metrics on the admin port: %d", code)
	}
}

func getCode(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func tail(s string) string {
	if len(s) > 200 {
		return s[len(s)-200:]
	}
	return s
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPprofOnlyWhenAskedAndOnlyOnTheAdminPort: --pprof serves Go's profiles on the admin port,
// never on the API port, and without the flag there are none.
func TestPprofOnlyWhenAskedAndOnlyOnTheAdminPort(t *testing.T) {
	c := newConfigDir(t, "listen: 127.0.0.1:0\nadminListen: 127.0.0.1:0\nupstream: {url: 'http://127.0.0.1:1', model: Qwen3-1.7B}\n")
	plain := start(t, context.Background(), "--config", c.path(), "--shutdown-delay", "0s")
	if code := getCode(t, "http://"+plain.admin+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("/debug/pprof/ without --pprof: %d, want 404", code)
	}
	p := start(t, context.Background(), "--config", c.path(), "--pprof", "--shutdown-delay", "0s")
	if code := getCode(t, "http://"+p.admin+"/debug/pprof/heap"); code != http.StatusOK {
		t.Fatalf("/debug/pprof/heap on the admin port with --pprof: %d", code)
	}
	if code := getCode(t, "http://"+p.admin+"/metrics"); code != http.StatusOK {
		t.Fatalf("/metrics on the admin port with --pprof: %d", code)
	}
	if code := getCode(t, "http://"+p.addr+"/debug/pprof/heap"); code != http.StatusNotFound {
		t.Fatalf("/debug/pprof/heap on the API port: %d, want 404", code)
	}
}
