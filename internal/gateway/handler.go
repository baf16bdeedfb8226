package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/qwenops/qwen-operator/internal/gateway/breaker"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

func (g *Gateway) routes() {
	g.mux = http.NewServeMux()
	g.mux.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { g.serveCompletion(w, r, chatEndpoint) })
	g.mux.HandleFunc("/v1/completions", func(w http.ResponseWriter, r *http.Request) { g.serveCompletion(w, r, completionsEndpoint) })
	g.mux.HandleFunc("/v1/responses", func(w http.ResponseWriter, r *http.Request) { g.serveCompletion(w, r, responsesEndpoint) })
	g.mux.HandleFunc("/v1/embeddings", func(w http.ResponseWriter, r *http.Request) { g.serveCompletion(w, r, embeddingsEndpoint) })
	g.mux.HandleFunc("/v1/models", g.serveModels)
	g.mux.HandleFunc("/healthz", serveHealth)
	g.mux.HandleFunc("/readyz", g.serveReady)
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, invalidRequest(http.StatusNotFound, "Unknown endpoint "+r.Method+" "+r.URL.Path, "", "unknown_url"))
	})
	admin := http.NewServeMux()
	admin.Handle("/metrics", promhttp.HandlerFor(g.m.reg, promhttp.HandlerOpts{Registry: g.m.reg}))
	admin.HandleFunc("/healthz", serveHealth)
	admin.HandleFunc("/readyz", g.serveReady)
	g.admin = admin
}

func serveHealth(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }

// ServeHTTP serves the OpenAI endpoints, /healthz and /readyz; /metrics is on Admin.
// Every response's writes are bounded by the client write timeout: a deadline a previous
// request on the same connection left behind is replaced.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	timeout := gatewayconfig.DefaultClientWriteTimeout
	if st := g.state.Load(); st != nil {
		timeout = st.cfg.Timeouts.ClientWrite.Duration
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout))
	g.mux.ServeHTTP(w, r)
}

// Admin serves the admin port: /metrics, /healthz and /readyz. No Ingress or HTTPRoute routes
// to it, so the metrics are not public.
func (g *Gateway) Admin() http.Handler { return g.admin }

func (g *Gateway) serveReady(w http.ResponseWriter, r *http.Request) {
	if !g.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok\n")
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, invalidRequest(http.StatusMethodNotAllowed, "Use "+allow+" on this endpoint.", "", "method_not_allowed"))
}

func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	st := g.state.Load()
	if st == nil {
		writeError(w, notConfigured)
		return
	}
	if st.keys != nil {
		if _, err := st.keys.authenticate(r.Header.Get("Authorization")); err != nil {
			writeError(w, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(st.modelList)
}

// modelList renders the /v1/models reply.
func modelList(models []string, now time.Time) []byte {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, m := range models {
		list.Data = append(list.Data, model{ID: m, Object: "model", Created: now.Unix(), OwnedBy: "qwen-operator"})
	}
	b, _ := json.Marshal(list)
	return append(b, '\n')
}

var notConfigured = &apiError{status: http.StatusServiceUnavailable, typ: "service_unavailable", message: "The gateway has no configuration yet."}

// serveCompletion runs one completion request through authentication, the client key,
// parsing, limits, degradation, breakers and the proxy, top to bottom. What happens is noted
// in one record, and the metrics are written from it once, at the end. However the handler
// ends, a panic included, settle releases the request's concurrency slot and trues up its
// token charge.
func (g *Gateway) serveCompletion(w http.ResponseWriter, r *http.Request, ep endpoint) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	st := g.state.Load()
	if st == nil {
		writeError(w, notConfigured)
		return
	}
	g.handlers.add(1)
	defer g.handlers.add(-1)
	rw := newResponseWriter(w, st.cfg.Timeouts.ClientWrite.Duration)
	rec := g.m.begin(g.now(), st.level)
	rec.ep, rec.requestID = ep, r.Header.Get("X-Request-Id")
	defer func() { g.finish(rec, rw.code()) }()
	var adm *admission
	defer g.settle(rw, &adm, rec)

	keyID, aerr := authenticate(r, st)
	if aerr != nil {
		writeError(rw, aerr)
		return
	}
	rec.keyID = keyID
	p := st.policy
	var c client
	cl := classStandard
	if p != nil {
		c, aerr = identify(p.source, p.header, p.v6Bits, r, keyID, st.trust)
		rec.client, rec.limited = c.key, true
		if aerr == nil {
			cl, aerr = p.classify(r, c, st.trust)
		}
	}
	var req *request
	if aerr == nil {
		req, aerr = readRequest(rw, r, st, ep)
	}
	if aerr != nil {
		if p != nil {
			v, rej := p.countRefused(r.Context(), c, rec.start, rec)
			if rej != nil {
				writeRateLimited(rw, rej)
				return
			}
			v.write(rw.Header())
		}
		writeError(rw, aerr)
		return
	}
	rec.model = req.model
	if p != nil {
		a, rej := p.admit(r.Context(), c, req, rec.start, rec)
		if rej != nil {
			writeRateLimited(rw, rej)
			return
		}
		adm = a
		if !g.awaitTurn(r.Context(), rw, a, cl, rec) {
			return // a 429 from the full queue carries the headers of the quota that queued
		}
		a.view.write(rw.Header())
	}

	rec.class, rec.level, rec.routed = cl, st.levelFor(cl), true
	rw.Header().Set(criticalityHeader, cl.String())
	rt := st.route(req, rec.level, rec.start)
	rec.cacheKey = st.cache.key(req, keyID)
	defer func() { rt.pass.Done(g.now(), breaker.Ignored) }() // when the proxy learned no outcome
	setRouteHeaders(rw.Header(), &rt)
	if rt.target == nil {
		if g.serveCached(rw, r, st, req, &rt, rec) {
			rec.upstream = cacheUpstream
			return
		}
		rec.upstream = gatewayconfig.StaticUpstream
		g.writeStatic(rw, st, req, rec.start)
	} else {
		rec.upstream = rt.target.name
		g.proxy(rw, r, st, req, &rt, rec)
	}
}

// settle ends a completion request's hold on its limits, deferred so that it runs however the
// handler ends: it releases the concurrency slot and trues the token charge up to the usage
// seen. After a panic it also refunds a charge no usage was seen for (the request produced
// nothing anyone was told of), logs the panic, and answers 500 when nothing was sent yet;
// otherwise, like a response the proxy marked aborted (an upstream that died mid-stream), the
// connection is aborted so the client cannot take a cut response for a whole one.
func (g *Gateway) settle(rw *responseWriter, adm **admission, rec *record) {
	p := recover()
	rw.deadline() // bounds the flush net/http does once the handler returns
	u := rec.usage
	if p != nil && u == nil {
		u = &usage{}
	}
	(*adm).finish(u, g.now(), rec)
	switch {
	case p == nil && !rw.aborted:
		return
	case p == nil || p == http.ErrAbortHandler:
	case rw.status == 0:
		g.log.Error("panic serving a completion request", "panic", p, "stack", string(debug.Stack()))
		writeError(rw, &apiError{status: http.StatusInternalServerError, typ: "server_error", message: "The gateway failed to serve the request."})
		return
	default:
		g.log.Error("panic serving a completion request", "panic", p, "stack", string(debug.Stack()))
	}
	panic(http.ErrAbortHandler)
}

// authenticate returns the API key id of a request (empty without authentication).
func authenticate(r *http.Request, st *state) (string, *apiError) {
	if st.keys == nil {
		return "", nil
	}
	return st.keys.authenticate(r.Header.Get("Authorization"))
}

// readRequest reads and parses a completion request for a model this gateway serves, or
// returns the error to answer.
func readRequest(rw *responseWriter, r *http.Request, st *state, ep endpoint) (*request, *apiError) {
	body, aerr := readBody(rw, r, st.cfg.MaxRequestBodyBytes, st.cfg.Timeouts.RequestBody.Duration)
	if aerr != nil {
		return nil, aerr
	}
	req, aerr := parseRequest(ep, r.Header.Get("Content-Type"), body)
	if aerr != nil {
		return nil, aerr
	}
	if !st.models[req.model] {
		return nil, invalidRequest(http.StatusNotFound, "The model `"+req.model+"` does not exist or you do not have access to it.", "model", "model_not_found")
	}
	return req, nil
}

// readBody reads the whole body, refusing more than limit bytes with 413 and a body that
// takes longer than timeout to arrive with 408 (a read deadline on the connection, lifted
// once the body is in).
func readBody(rw *responseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, *apiError) {
	tooLarge := func() *apiError {
		return invalidRequest(http.StatusRequestEntityTooLarge,
			"The request body is larger than the limit of "+strconv.FormatInt(limit, 10)+" bytes.", "", "request_too_large")
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	rc := http.NewResponseController(rw)
	deadline := rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	b, err := readSized(http.MaxBytesReader(nil, r.Body, limit), r.ContentLength)
	if deadline && err == nil {
		// Lifted once the body is in; on an error it stays, so that net/http's attempt to
		// read the rest of the body before replying gives up as soon.
		rc.SetReadDeadline(time.Time{})
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge()
	case errors.Is(err, os.ErrDeadlineExceeded):
		rw.Header().Set("Connection", "close")
		return nil, invalidRequest(http.StatusRequestTimeout,
			"The request body did not arrive within "+timeout.String()+".", "", "request_timeout")
	case err != nil:
		return nil, invalidRequest(http.StatusBadRequest, "could not read the request body: "+err.Error(), "", "invalid_body")
	}
	return b, nil
}

// readSized is io.ReadAll into a buffer sized for a body of the declared length, up to
// 64 KiB (one allocation for most bodies instead of a doubling series); size is a hint,
// never trusted beyond the reader.
func readSized(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(r)
	}
	// The declared length is the client's word: a body that has not arrived gets no more
	// than a small buffer, so a slow client declaring a large body cannot make the gateway
	// commit its memory ahead of the bytes; the buffer grows as they come.
	b := make([]byte, 0, min(size, 64<<10)+1) // +1: the read that sees EOF needs room
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // the body is longer than declared: grow
		}
	}
}

// responseWriter remembers the status code, can always be flushed, and bounds every write to
// the client by a deadline (writeTimeout from the write's start), so a client that stops
// reading ends its request instead of holding it forever.
type responseWriter struct {
	http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
	armed        time.Time // when the write deadline was last set
	status       int
	// aborted asks settle to abort the connection: the response was cut short.
	aborted bool
}

func newResponseWriter(w http.ResponseWriter, writeTimeout time.Duration) *responseWriter {
	return &responseWriter{ResponseWriter: w, rc: http.NewResponseController(w), writeTimeout: writeTimeout}
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.deadline()
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client.
func (w *responseWriter) Flush() {
	w.deadline()
	w.rc.Flush()
}

// deadline moves the write deadline to writeTimeout from now (ignored where unsupported). A
// stream writes many small events, and moving a deadline costs a timer update: within an
// eighth of the timeout of the last move the deadline stays, still at least 7/8 of the
// timeout away.
func (w *responseWriter) deadline() {
	if w.writeTimeout <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(w.armed) < w.writeTimeout/8 {
		return
	}
	w.armed = now
	_ = w.rc.SetWriteDeadline(now.Add(w.writeTimeout))
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
