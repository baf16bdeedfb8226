package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// connCounter is an httptest server that counts the connections it accepted.
func connCounter(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func testH1(headerTimeout time.Duration) *h1Transport {
	d := &net.Dialer{}
	return newH1Transport(&http.Transport{}, d.DialContext, headerTimeout, time.Minute, 4)
}

func post(t *testing.T, tr *h1Transport, ctx context.Context, url, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return tr.RoundTrip(req)
}

// TestH1TransportReusesConnections: sequential requests whose bodies are read to the end share
// one connection, for Content-Length and chunked responses alike, and the engine sees the
// request as sent.
func TestH1TransportReusesConnections(t *testing.T) {
	srv, conns := connCounter(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" || r.Header.Get("Content-Type") != "application/json" || r.ContentLength != int64(len(b)) {
			http.Error(w, "bad request as received", 400)
			return
		}
		if r.URL.Query().Get("chunked") != "" {
			w.Write(b[:1])
			w.(http.Flusher).Flush()
			w.Write(b[1:])
			return
		}
		w.Write(b)
	})
	tr := testH1(0)
	for i, q := range []string{"", "?chunked=1", "", "?chunked=1"} {
		resp, err := post(t, tr, context.Background(), srv.URL+"/v1/chat/completions"+q, `{"n":1}`)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != `{"n":1}` {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 4 sequential requests, want 1", n)
	}
}

// TestH1TransportClosedIdleKeepsNoNewConnections: after CloseIdleConnections (the gateway's
// reload replaced the transport), a response that ends then closes its connection instead of
// pooling it where no request will take it; the next request pools again.
func TestH1TransportClosedIdleKeepsNoNewConnections(t *testing.T) {
	release := make(chan struct{})
	srv, conns := connCounter(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "" { // the head now, the body once released
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-release
		}
		io.WriteString(w, "ok")
	})
	tr := testH1(0)
	resp, err := post(t, tr, context.Background(), srv.URL+"/?wait=1", "{}")
	if err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	close(release)
	io.ReadAll(resp.Body)
	resp.Body.Close()
	pooled := func() int {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		n := 0
		for _, cs := range tr.idle {
			n += len(cs)
		}
		return n
	}
	if n := pooled(); n != 0 {
		t.Fatalf("%d connections pooled after CloseIdleConnections, want 0", n)
	}
	for range 2 {
		resp, err := post(t, tr, context.Background(), srv.URL+"/", "{}")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if n, c := pooled(), conns.Load(); n != 1 || c != 2 {
		t.Errorf("after two more requests: %d pooled, %d connections, want 1 pooled and 2 in all (the closed one and one reused)", n, c)
	}
}

// TestH1TransportUnreadBodyIsNotReused: a response closed before its end closes its
// connection; the next request gets a fresh one and a whole answer.
func TestH1TransportUnreadBodyIsNotReused(t *testing.T) {
	srv, conns := connCounter(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 64<<10)))
	})
	tr := testH1(0)
	resp, err := post(t, tr, context.Background(), srv.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	resp, err = post(t, tr, context.Background(), srv.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if len(b) != 64<<10 || conns.Load() != 2 {
		t.Fatalf("%d bytes over %d connections, want 65536 over 2", len(b), conns.Load())
	}
}

// TestH1TransportSkipsConnectionsTheEngineClosed: an engine that closes idle connections (as
// uvicorn does after 5 s) never makes a request fail: the closed connection is found before
// it is used.
func TestH1TransportSkipsConnectionsTheEngineClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan struct{}, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// One request, one answer, then the engine closes the connection.
			br := bufio.NewReader(c)
			if req, err := http.ReadRequest(br); err == nil {
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			c.Close()
			closed <- struct{}{}
		}
	}()
	tr := testH1(0)
	for i := range 3 {
		resp, err := post(t, tr, context.Background(), "http://"+ln.Addr().String()+"/", "{}")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "ok" {
			t.Fatalf("request %d: %q", i, b)
		}
		<-closed // the engine has closed the connection the transport now pools
	}
}

// TestH1TransportEndsWithTheRequest: a request whose context ends while the engine has not
// answered, or in the middle of the body, returns the context's error and frees the
// connection; a response head slower than the header timeout is a timeout.
func TestH1TransportEndsWithTheRequest(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv, _ := connCounter(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
		}
		<-release
	})
	tr := testH1(0)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := post(t, tr, ctx, srv.URL+"/head", "{}")
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before the head: %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	resp, err := post(t, tr, ctx, srv.URL+"/body", "{}")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled in the body: %v, want context.Canceled", err)
	}
	resp.Body.Close()

	_, err = post(t, testH1(50*time.Millisecond), context.Background(), srv.URL+"/head", "{}")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("no head within the header timeout: %v, want a timeout", err)
	}
}

// TestH1TransportRefusesHeaderInjection: a header value with a line break is refused, never
// written.
func TestH1TransportRefusesHeaderInjection(t *testing.T) {
	srv, _ := connCounter(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Injected") != "" {
			t.Error("the injected header reached the engine")
		}
	})
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("{}"))
	req.Header.Set("X-Request-Id", "a\r\nX-Injected: 1")
	if _, err := testH1(0).RoundTrip(req); err == nil {
		t.Fatal("a header value with CRLF was sent")
	}
}

// TestH1TransportHandsHTTPSToNetHTTP: an https upstream is reached through http.Transport.
func TestH1TransportHandsHTTPSToNetHTTP(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tls") }))
	defer srv.Close()
	d := &net.Dialer{}
	tr := newH1Transport(srv.Client().Transport.(*http.Transport), d.DialContext, 0, time.Minute, 4)
	resp, err := post(t, tr, context.Background(), srv.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "tls" {
		t.Fatalf("%q", b)
	}
}
