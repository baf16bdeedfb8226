package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// writeStatic answers with the configured static response without calling an engine: an
// OpenAI completion (or its event stream) carrying the message for a 2xx status, an OpenAI
// error carrying it otherwise. With no static response configured it answers 503.
func (g *Gateway) writeStatic(w *responseWriter, st *state, req *request, now time.Time) {
	s := st.static
	if s == nil {
		writeError(w, &apiError{status: http.StatusServiceUnavailable, typ: "service_unavailable", code: "upstream_unavailable",
			message: "The model is temporarily unavailable. Please retry later."})
		return
	}
	status := int(s.HTTPStatus)
	if !req.ep.completion() {
		writeStaticError(w, s.Message, status)
		return
	}
	if status < 200 || status > 299 {
		writeError(w, &apiError{status: status, typ: "service_unavailable", code: "degraded", message: s.Message})
		return
	}
	body := staticCompletion(req, s.Message, g.seq.Add(1), now)
	if req.stream {
		sse, _, err := completionToSSE(req.ep, body, req.includeUsage, nil)
		if err != nil { // cannot happen: body is ours
			writeError(w, &apiError{status: 500, typ: "server_error", message: err.Error()})
			return
		}
		setSSEHeaders(w.Header())
		w.WriteHeader(status)
		w.Write(sse)
		w.Flush()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// staticCompletion is a non-streaming completion response carrying msg, with the static
// reply's system_fingerprint.
func staticCompletion(req *request, msg string, seq uint64, now time.Time) []byte {
	type m = map[string]any
	var obj m
	id := fmt.Sprintf("static-%d-%d", now.Unix(), seq)
	zero := m{"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
	if req.ep == chatEndpoint {
		obj = m{"id": "chatcmpl-" + id, "object": "chat.completion", "created": now.Unix(), "model": req.model,
			"system_fingerprint": fingerprintStatic,
			"choices":            []m{{"index": 0, "message": m{"role": "assistant", "content": msg}, "logprobs": nil, "finish_reason": "stop"}},
			"usage":              zero}
	} else {
		obj = m{"id": "cmpl-" + id, "object": "text_completion", "created": now.Unix(), "model": req.model,
			"system_fingerprint": fingerprintStatic,
			"choices":            []m{{"index": 0, "text": msg, "logprobs": nil, "finish_reason": "stop"}},
			"usage":              zero}
	}
	b, _ := json.Marshal(obj)
	return b
}
