package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// /v1/responses (the Responses API, which vLLM serves) and /v1/embeddings pass through the
// gateway with the same authentication, limits, circuit breakers and metrics as the
// completion endpoints; the body goes upstream as the client sent it, with the upstream's
// model name. The degradation levels apply as far as they make sense for them:
//   - L1 and L2 rewrite only completions: a Responses stream stays a stream, as vLLM sends it;
//   - L3 sends /v1/responses to the fallback; embeddings stay on the primary (another model's
//     vectors are not comparable with the primary's);
//   - L4, and no upstream able to answer, get the static reply as an OpenAI error: its
//     status when that is an error status, else 503 (no static vector or Response exists).

// decodePassthrough reads the fields the gateway needs of a Responses or embeddings request:
// model, stream (Responses only), and the token estimate: the input (and instructions) at
// bytesPerToken, plus max_output_tokens for a Response.
func (r *request) decodePassthrough() *apiError {
	if raw, ok := r.fields.get("model"); !ok || !decodeScalar(raw, &r.model) && json.Unmarshal(raw, &r.model) != nil || r.model == "" {
		return invalidRequest(400, "you must provide a model parameter (a string)", "model", "missing_model")
	}
	in, _ := r.fields.get("input")
	if len(in) == 0 || isNull(in) {
		return invalidRequest(400, "input must be set", "input", "invalid_input")
	}
	instructions, _ := r.fields.get("instructions")
	r.promptTokens = max(int64((len(in)+len(instructions))/bytesPerToken), 1)
	r.choices = 1
	if r.ep == embeddingsEndpoint {
		r.embeds = true
		return nil
	}
	stream, err := optional[bool](r.fields, "stream", "a boolean")
	if err != nil {
		return err
	}
	r.stream = stream != nil && *stream
	n, err := optional[int64](r.fields, "max_output_tokens", "an integer")
	if err != nil {
		return err
	}
	if n != nil {
		if *n < 1 {
			return invalidRequest(400, "max_output_tokens must be >= 1", "max_output_tokens", "invalid_value")
		}
		r.maxTokens = *n
	}
	return nil
}

// writeStaticError answers a request the static reply cannot answer in kind (a Response, an
// embedding) with the static message as an OpenAI error: the configured status when it is
// an error status, else 503.
func writeStaticError(w http.ResponseWriter, msg string, status int) {
	if status < 400 {
		status = http.StatusServiceUnavailable
	}
	writeError(w, &apiError{status: status, typ: "service_unavailable", code: "degraded", message: msg})
}

var (
	responseDoneTypes = [][]byte{[]byte(`"response.completed"`), []byte(`"response.incomplete"`), []byte(`"response.failed"`)}
	typeField         = []byte(`"type"`)
)

// responsesEventEnd reads a Responses stream event: done when it is the last event of a
// Response (response.completed, .incomplete or .failed), with the Response's usage. Only
// events that name one of those types are decoded.
func responsesEventEnd(data []byte) (u *usage, done bool) {
	if !bytes.Contains(data, typeField) {
		return nil, false
	}
	named := false
	for _, t := range responseDoneTypes {
		if bytes.Contains(data, t) {
			named = true
			break
		}
	}
	if !named {
		return nil, false
	}
	var ev struct {
		Type     string `json:"type"`
		Response struct {
			Usage *usage `json:"usage"`
		} `json:"response"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return nil, false
	}
	switch ev.Type {
	case "response.completed", "response.incomplete", "response.failed":
		return ev.Response.Usage.normalize(), true
	}
	return nil, false
}
