package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/qwenops/qwen-operator/internal/gateway/breaker"
)

func (g *Gateway) routes() {
	g.mux = http.NewServeMux()
	g.mux.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { g.serveCompletion(w, r, chatEndpoint) })
	g.mux.HandleFunc("/v1/completions", func(w http.ResponseWriter, r *http.Request) { g.serveCompletion(w, r, completionsEndpoint) })
	g.mux.HandleFunc("/v1/models", g.serveModels)
	g.mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	g.mux.HandleFunc("/readyz", g.serveReady)
	g.mux.Handle("/metrics", promhttp.HandlerFor(g.m.reg, promhttp.HandlerOpts{Registry: g.m.reg}))
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, invalidRequest(http.StatusNotFound, "Unknown endpoint "+r.Method+" "+r.URL.Path, "", "unknown_url"))
	})
}

// ServeHTTP serves the OpenAI endpoints, /healthz, /readyz and /metrics.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

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

// serveCompletion runs one completion request through authentication, parsing, limits,
// degradation, breakers and the proxy, top to bottom. What happens is noted in one record,
// and the metrics are written from it once, at the end.
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
	rw := &responseWriter{ResponseWriter: w}
	rec := g.m.begin(g.now(), st.level)
	defer func() { g.m.end(rec, rw.code(), g.now()) }()

	req, keyID, aerr := accept(r, st, ep)
	if aerr != nil {
		writeError(rw, aerr)
		return
	}
	rec.model = req.model

	var adm *admission
	if p := st.policy; p != nil {
		c := identify(p.source, p.header, r, keyID, st.trusted)
		a, rej := p.admit(r.Context(), c, req, rec.start, rec)
		if rej != nil {
			writeRateLimited(rw, rej)
			return
		}
		adm = a
	}

	rt := st.route(req, rec.start)
	defer func() { rt.pass.Done(g.now(), breaker.Ignored) }() // when the proxy learned no outcome
	if rt.level > 0 {
		rw.Header().Set("X-Qwen-Degradation-Level", strconv.Itoa(rt.level))
	}
	if rt.target == nil {
		rw.Header().Set("X-Qwen-Upstream", "static")
		g.writeStatic(rw, st, req, rec.start)
	} else {
		rw.Header().Set("X-Qwen-Upstream", rt.target.name)
		g.proxy(rw, r, st, req, &rt, rec)
	}
	adm.finish(rec.usage, g.now(), rec)
}

// accept authenticates a completion request and parses it: the API key id (empty without
// authentication) and the request for a model this gateway serves, or the error to answer.
func accept(r *http.Request, st *state, ep endpoint) (*request, string, *apiError) {
	keyID := ""
	if st.keys != nil {
		id, aerr := st.keys.authenticate(r.Header.Get("Authorization"))
		if aerr != nil {
			return nil, "", aerr
		}
		keyID = id
	}
	body, aerr := readBody(r, st.cfg.MaxRequestBodyBytes)
	if aerr != nil {
		return nil, "", aerr
	}
	req, aerr := parseRequest(ep, r.Header.Get("Content-Type"), body)
	if aerr != nil {
		return nil, "", aerr
	}
	if !st.models[req.model] {
		return nil, "", invalidRequest(http.StatusNotFound, "The model `"+req.model+"` does not exist or you do not have access to it.", "model", "model_not_found")
	}
	return req, keyID, nil
}

// readBody reads the whole body, refusing more than limit bytes with 413.
func readBody(r *http.Request, limit int64) ([]byte, *apiError) {
	tooLarge := invalidRequest(http.StatusRequestEntityTooLarge,
		"The request body is larger than the limit of "+strconv.FormatInt(limit, 10)+" bytes.", "", "request_too_large")
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		return nil, invalidRequest(http.StatusBadRequest, "could not read the request body: "+err.Error(), "", "invalid_body")
	}
	return b, nil
}

// responseWriter remembers the status code and can always be flushed.
type responseWriter struct {
	http.ResponseWriter
	status int
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
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client.
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
