package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/qwenops/qwen-operator/internal/gateway/breaker"
)

// maxUpstreamJSON bounds a non-streaming upstream response the gateway reads whole; a larger
// one is answered with 502, never cut short.
const maxUpstreamJSON = 64 << 20

// proxy sends the request to rt.target and writes the response. It reports the outcome to
// the target's breaker through rt.pass as soon as it is known, before the client can see the
// end of the response, so the next request already meets the breaker state this one left.
// The response's usage and a stream's first token go to rec.
func (g *Gateway) proxy(w *responseWriter, r *http.Request, st *state, req *request, rt *route, rec *record) {
	target := rt.target
	report := func(o breaker.Outcome) { rt.pass.Done(g.now(), o) }

	body, err := req.upstreamBody(rt.rw)
	if err != nil {
		writeError(w, invalidRequest(400, "could not rewrite the request: "+err.Error(), "", "invalid_request"))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ureq, err := http.NewRequestWithContext(ctx, http.MethodPost, target.baseURL+req.ep.path(), bytes.NewReader(body))
	if err != nil {
		writeError(w, &apiError{status: 502, typ: "upstream_error", message: "bad upstream URL"})
		return
	}
	ureq.Header.Set("Content-Type", "application/json")
	if rt.rw.stream {
		ureq.Header.Set("Accept", "text/event-stream")
	}
	if id := r.Header.Get("X-Request-Id"); id != "" {
		ureq.Header.Set("X-Request-Id", id)
	}

	resp, err := st.transport.RoundTrip(ureq)
	if err != nil {
		report(g.failure(r, nil))
		writeUpstreamError(w, err)
		return
	}
	defer resp.Body.Close()
	idle := newIdleReader(g.timers, resp.Body, st.idleTimeout, cancel)
	defer idle.stop()

	copyHeader(w.Header(), resp.Header, "X-Request-Id")
	if resp.StatusCode != http.StatusOK {
		// Engine errors are already OpenAI-shaped: pass them through. A 4xx is the client's
		// doing and says nothing of the engine's health.
		switch {
		case resp.StatusCode >= 500:
			report(breaker.Failure)
		case resp.StatusCode >= 400:
			report(breaker.Ignored)
		default:
			report(breaker.Success)
		}
		copyHeader(w.Header(), resp.Header, "Content-Type", "Retry-After")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, io.LimitReader(idle, maxUpstreamJSON))
		return
	}

	if rt.rw.stream {
		setSSEHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
		w.Flush()
		tee := st.cache.teeFor(w, rec) // the cache keeps the engine's stream, reasoning included
		var out http.ResponseWriter = tee
		if req.hideReasoning {
			out = reasoningStripper{tee}
		}
		s, err := pipeSSE(out, idle, req.includeUsage, req.ep == responsesEndpoint, func() { rec.firstToken = g.now() })
		if err == nil && !s.done {
			err = errStreamCut
		}
		report(g.outcome(r, err, idle))
		if err != nil && !errors.Is(err, errClientGone) {
			// The client must not take what it got for the whole answer: an OpenAI error
			// event, no [DONE], and the connection aborted (settle does it).
			writeStreamError(w, idle.fired.Load())
			w.aborted, rec.status = true, http.StatusBadGateway
		}
		g.cacheFillStream(r, st, rec, tee, req.ep, s.usage, err == nil)
		rec.usage = s.usage
		if rec.usage == nil { // cut short: charge what was streamed, one token per chunk
			rec.usage = &usage{PromptTokens: req.promptTokens, CompletionTokens: s.chunks}
		}
		return
	}

	full, err := io.ReadAll(io.LimitReader(idle, maxUpstreamJSON+1))
	if err != nil {
		report(g.failure(r, idle))
		writeUpstreamError(w, err)
		return
	}
	if len(full) > maxUpstreamJSON {
		report(breaker.Ignored)
		writeError(w, &apiError{status: http.StatusBadGateway, typ: "upstream_error", code: "upstream_response_too_large",
			message: fmt.Sprintf("The model's response is larger than the gateway's limit of %d bytes; ask for fewer or shorter choices.", maxUpstreamJSON)})
		return
	}
	rec.usage = responseUsage(full) // the engine's usage, whatever the client is shown
	engine := full                  // what the cache keeps: the answer before marking or stripping
	if req.hideReasoning {
		full = stripReasoning(full, "message")
	}
	var fp json.RawMessage
	if req.ep.completion() {
		fp = fingerprint(rt.level)
	}
	if req.stream { // L1: the engine answered whole, the client wants SSE.
		sse, _, err := completionToSSE(req.ep, full, req.includeUsage, fp)
		if err != nil {
			report(breaker.Failure)
			writeError(w, &apiError{status: 502, typ: "upstream_error", message: err.Error()})
			return
		}
		report(breaker.Success)
		g.cacheFill(r, st, rec, engine)
		setSSEHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
		rec.firstToken = g.now()
		w.Write(sse)
		w.Flush()
		return
	}
	report(breaker.Success)
	g.cacheFill(r, st, rec, engine)
	if fp != nil {
		full = withFingerprint(full, fp)
	}
	copyHeader(w.Header(), resp.Header, "Content-Type")
	w.Header().Set("Content-Length", strconv.Itoa(len(full)))
	w.WriteHeader(http.StatusOK)
	w.Write(full)
	w.Flush()
}

// outcome classifies the end of a stream for the breaker.
func (g *Gateway) outcome(r *http.Request, err error, idle *idleReader) breaker.Outcome {
	switch {
	case err == nil:
		return breaker.Success
	case errors.Is(err, errClientGone):
		return breaker.Ignored
	default:
		return g.failure(r, idle)
	}
}

// failure is a failed upstream call: Ignored when the client went away first, else Failure.
func (g *Gateway) failure(r *http.Request, idle *idleReader) breaker.Outcome {
	if r.Context().Err() != nil && (idle == nil || !idle.fired.Load()) {
		return breaker.Ignored
	}
	return breaker.Failure
}

// errStreamCut is an upstream stream that ended without data: [DONE].
var errStreamCut = errors.New("the upstream stream ended before data: [DONE]")

// writeStreamError ends a stream the upstream broke off with an OpenAI-shaped error event.
func writeStreamError(w *responseWriter, idle bool) {
	e := &apiError{typ: "server_error", code: "upstream_stream_cut", message: "The model stopped answering in the middle of the response; the answer is incomplete."}
	if idle {
		e.code, e.message = "upstream_timeout", "The model stopped sending in the middle of the response; the answer is incomplete."
	}
	b, _ := json.Marshal(e)
	w.Write(append(append([]byte("data: "), b...), "\n\n"...))
	w.Flush()
}

func writeUpstreamError(w http.ResponseWriter, err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.Canceled) {
		writeError(w, &apiError{status: http.StatusGatewayTimeout, typ: "upstream_error", code: "upstream_timeout",
			message: "The model did not answer in time."})
		return
	}
	writeError(w, &apiError{status: http.StatusBadGateway, typ: "upstream_error", code: "upstream_unavailable",
		message: "The model could not be reached."})
}

func copyHeader(dst, src http.Header, names ...string) {
	for _, n := range names {
		if v := src.Get(n); v != "" {
			dst.Set(n, v)
		}
	}
}

// idleReader cancels the upstream call when one read waits longer than the idle timeout. The
// timer runs only while a read is waiting for the engine: time spent writing to the client
// between reads is the client's, and a slow reader is no engine failure.
type idleReader struct {
	r     io.Reader
	d     time.Duration
	t     clock.Timer
	fired atomic.Bool
}

func newIdleReader(c clock.WithDelayedExecution, r io.Reader, d time.Duration, cancel context.CancelFunc) *idleReader {
	ir := &idleReader{r: r, d: d}
	ir.t = c.AfterFunc(d, func() {
		ir.fired.Store(true)
		cancel()
	})
	ir.t.Stop()
	return ir
}

func (ir *idleReader) Read(p []byte) (int, error) {
	ir.t.Reset(ir.d)
	n, err := ir.r.Read(p)
	ir.t.Stop()
	return n, err
}

func (ir *idleReader) stop() { ir.t.Stop() }
