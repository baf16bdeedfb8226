package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Transport sends requests to plain-http upstreams over persistent HTTP/1.1 connections,
// with none of http.Transport's per-request goroutine handoffs: the handler's goroutine
// writes the request, reads the response (net/http's own parser, http.ReadResponse) and
// returns the connection to the pool once the body has been read to its end. Upstreams
// reached over https go through std.
//
// A pooled connection the engine has closed (uvicorn, which serves vLLM and SGLang, closes
// idle connections after 5 s) is found before reuse by a non-blocking peek, so a request is
// not sent into a dead connection; like http.Transport, a POST that fails on a connection
// closed at the very moment it was sent is not retried (the engine may have started on it).
type h1Transport struct {
	std            *http.Transport
	dial           dialFunc
	headerTimeout  time.Duration // 0: none
	idleTimeout    time.Duration
	maxIdlePerHost int

	mu        sync.Mutex
	idle      map[string][]*h1Conn // by host:port, most recently used last
	closeIdle bool                 // CloseIdleConnections was called and no request since: close, do not pool
}

// h1Conn is a persistent connection with its buffers.
type h1Conn struct {
	net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

func newH1Transport(std *http.Transport, dial dialFunc, headerTimeout, idleTimeout time.Duration, maxIdlePerHost int) *h1Transport {
	return &h1Transport{std: std, dial: dial, headerTimeout: headerTimeout, idleTimeout: idleTimeout,
		maxIdlePerHost: maxIdlePerHost, idle: map[string][]*h1Conn{}}
}

// CloseIdleConnections closes the pooled connections; those in use close when their
// response ends, until the transport is asked for a connection again (as http.Transport does:
// a replaced transport's connections are not left open in a pool nobody uses).
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*h1Conn{}
	t.closeIdle = true
	t.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			c.Close()
		}
	}
	t.std.CloseIdleConnections()
}

// RoundTrip sends req and returns the response; its body must be read to the end (then the
// connection is reused) or closed.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || req.URL.User != nil {
		return t.std.RoundTrip(req)
	}
	ctx := req.Context()
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	c, err := t.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	resp, err := t.exchange(c, req)
	if err != nil {
		stop()
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	resp.Body = &h1Body{body: resp.Body, ctx: ctx, t: t, addr: addr, c: c, stop: stop, keep: !resp.Close}
	return resp, nil
}

// exchange writes the request and reads the response head.
func (t *h1Transport) exchange(c *h1Conn, req *http.Request) (*http.Response, error) {
	if err := writeRequest(c.bw, req); err != nil {
		return nil, err
	}
	if t.headerTimeout > 0 {
		c.SetReadDeadline(time.Now().Add(t.headerTimeout))
	}
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			if t.headerTimeout > 0 {
				c.SetReadDeadline(time.Time{})
			}
			return resp, nil
		}
		// 1xx (103 Early Hints): the final response follows.
	}
}

// writeRequest writes req's head and body in one write.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(req.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\nUser-Agent: qwen-gateway\r\n")
	if req.Body != nil && req.ContentLength >= 0 {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		bw.WriteString("\r\n")
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return errors.New("invalid header name " + strconv.Quote(k))
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return errors.New("invalid value of header " + k)
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	if req.Body != nil {
		n, err := io.Copy(bw, req.Body)
		req.Body.Close()
		if err != nil {
			return err
		}
		if req.ContentLength >= 0 && n != req.ContentLength {
			return errors.New("request body length differs from its Content-Length")
		}
	}
	return bw.Flush()
}

// get returns a live pooled connection to addr, or dials one.
func (t *h1Transport) get(ctx context.Context, addr string) (*h1Conn, error) {
	now := time.Now()
	t.mu.Lock()
	t.closeIdle = false
	t.mu.Unlock()
	for {
		t.mu.Lock()
		cs := t.idle[addr]
		if len(cs) == 0 {
			t.mu.Unlock()
			break
		}
		c := cs[len(cs)-1]
		t.idle[addr] = cs[:len(cs)-1]
		t.mu.Unlock()
		if now.Sub(c.idleSince) < t.idleTimeout && peerOpen(c.Conn) {
			return c, nil
		}
		c.Close()
	}
	nc, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &h1Conn{Conn: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 8<<10)}, nil
}

// put returns a connection whose response was read to its end to the pool.
func (t *h1Transport) put(addr string, c *h1Conn) {
	c.idleSince = time.Now()
	t.mu.Lock()
	if cs := t.idle[addr]; !t.closeIdle && len(cs) < t.maxIdlePerHost {
		t.idle[addr] = append(cs, c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	c.Close()
}

// peerOpen reports whether an idle connection is still open at the other end and silent: a
// peek that does not wait finds nothing to read. A closed connection reads EOF (or an
// error), and bytes the server sent unasked (a 408 before closing) make it unusable too.
func peerOpen(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true // never wait
	})
	return err == nil && open
}

// h1Body is a response body that returns its connection to the pool at its end.
type h1Body struct {
	body io.ReadCloser
	ctx  context.Context
	t    *h1Transport
	addr string
	c    *h1Conn
	stop func() bool // stops closing the connection when the request's context ends
	keep bool        // the response allows reusing the connection
	done bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.done = true
		if b.stop() && b.keep {
			b.t.put(b.addr, b.c)
		} else {
			b.c.Close()
		}
	case err != nil && b.ctx.Err() != nil:
		err = b.ctx.Err() // the connection was closed because the request ended, as http.Transport says
	}
	return n, err
}

// Close ends the response; a body not read to its end closes the connection.
func (b *h1Body) Close() error {
	if !b.done {
		b.done = true
		b.stop()
		b.c.Close()
	}
	return nil
}
