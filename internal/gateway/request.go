package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"strconv"
	"unicode/utf8"
)

// endpoint is one of the OpenAI endpoints the gateway proxies.
type endpoint int

const (
	chatEndpoint endpoint = iota
	completionsEndpoint
	// responsesEndpoint and embeddingsEndpoint pass through (see passthrough.go).
	responsesEndpoint
	embeddingsEndpoint
)

var endpointPaths = [...]string{"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings"}

func (e endpoint) path() string { return endpointPaths[e] }

// completion reports whether e is a chat or text completion endpoint, the ones the
// degradation levels rewrite and the static reply answers in kind.
func (e endpoint) completion() bool { return e == chatEndpoint || e == completionsEndpoint }

// request is a parsed completion request. Unknown fields are kept and forwarded as they are.
type request struct {
	ep     endpoint
	raw    []byte
	fields object

	model        string
	stream       bool  // the client asked for SSE
	includeUsage bool  // the client asked for the usage chunk (stream_options.include_usage)
	promptTokens int64 // estimate: bytes of messages (or prompt) / 4
	maxTokens    int64 // max_completion_tokens, else max_tokens, else 0 (not set)
	choices      int64 // the sequences the engine generates: max(n, best_of, 1)
	// embeds is true for a request that generates no tokens (embeddings): no completion is
	// estimated for it.
	embeds bool
	// hideReasoning: the client sent return_reasoning: false (see reasoning.go).
	hideReasoning bool
}

// bytesPerToken is the rough size of a token used to estimate a prompt's token count from its
// JSON size before the engine has tokenized it. The estimate is trued up from the response.
const bytesPerToken = 4

// parseRequest checks the content type and the fields the gateway relies on.
func parseRequest(ep endpoint, contentType string, body []byte) (*request, *apiError) {
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || mt != "application/json" {
			return nil, invalidRequest(400, fmt.Sprintf("Content-Type must be application/json, not %q", contentType), "", "unsupported_content_type")
		}
	}
	r := &request{ep: ep, raw: body}
	var err error
	if r.fields, err = parseObject(body); err != nil {
		return nil, invalidRequest(400, "We could not parse the JSON body of your request: it must be a JSON object.", "", "invalid_json")
	}
	decode := r.decodeKnown
	if !ep.completion() {
		decode = r.decodePassthrough
	}
	if err := decode(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *request) decodeKnown() *apiError {
	if raw, ok := r.fields.get("model"); !ok || !decodeScalar(raw, &r.model) && json.Unmarshal(raw, &r.model) != nil || r.model == "" {
		return invalidRequest(400, "you must provide a model parameter (a string)", "model", "missing_model")
	}
	stream, err := optional[bool](r.fields, "stream", "a boolean")
	if err != nil {
		return err
	}
	r.stream = stream != nil && *stream
	if err := r.decodeStreamOptions(); err != nil {
		return err
	}
	if r.ep == chatEndpoint {
		msgs, _ := r.fields.get("messages")
		if len(msgs) < 2 || msgs[0] != '[' || msgs[skipSpace(msgs, 1)] == ']' { // valid JSON: '[' ends with ']'
			return invalidRequest(400, "messages must be a non-empty array", "messages", "invalid_messages")
		}
		r.promptTokens = int64(len(msgs) / bytesPerToken)
		if _, err := optional[bool](r.fields, "enable_thinking", "a boolean"); err != nil {
			return err
		}
		if kw, ok := r.fields.get("chat_template_kwargs"); ok && !isNull(kw) && kw[0] != '{' {
			return invalidRequest(400, "chat_template_kwargs must be an object", "chat_template_kwargs", "invalid_type")
		}
		if err := r.decodeReturnReasoning(); err != nil {
			return err
		}
	} else {
		p, _ := r.fields.get("prompt")
		if len(p) == 0 || isNull(p) {
			return invalidRequest(400, "prompt must be set", "prompt", "invalid_prompt")
		}
		r.promptTokens = int64(len(p) / bytesPerToken)
	}
	r.promptTokens = max(r.promptTokens, 1)
	// max_completion_tokens wins over max_tokens, as in vLLM and OpenAI; 0 is refused (OpenAI
	// refuses it, and vLLM would read 0 as "not set" and fall back to max_tokens).
	r.choices = 1
	for _, name := range []string{"max_tokens", "max_completion_tokens", "n", "best_of"} {
		n, err := optional[int64](r.fields, name, "an integer")
		if err != nil {
			return err
		}
		if n == nil {
			continue
		}
		if *n < 1 {
			return invalidRequest(400, name+" must be >= 1", name, "invalid_value")
		}
		switch name {
		case "max_tokens", "max_completion_tokens":
			r.maxTokens = *n
		default:
			r.choices = max(r.choices, *n)
		}
	}
	return nil
}

// streamOptions is stream_options; other keys in it are forwarded untouched.
type streamOptions struct {
	IncludeUsage         *bool `json:"include_usage"`
	ContinuousUsageStats *bool `json:"continuous_usage_stats"`
}

func (r *request) decodeStreamOptions() *apiError {
	raw, ok := r.fields.get("stream_options")
	if !ok || isNull(raw) {
		return nil
	}
	var so streamOptions
	if err := json.Unmarshal(raw, &so); err != nil || raw[0] != '{' {
		return invalidRequest(400, "stream_options must be an object like {\"include_usage\": true}", "stream_options", "invalid_stream_options")
	}
	if !r.stream {
		return invalidRequest(400, "stream_options is only allowed when stream is true", "stream_options", "invalid_stream_options")
	}
	r.includeUsage = so.IncludeUsage != nil && *so.IncludeUsage
	return nil
}

// optional decodes an optional field; absent and null give nil. Booleans and integers, most
// of what the gateway reads, are decoded without encoding/json.
func optional[T any](fields object, name, want string) (*T, *apiError) {
	raw, ok := fields.get(name)
	if !ok || isNull(raw) {
		return nil, nil
	}
	v := new(T)
	if !decodeScalar(raw, v) && json.Unmarshal(raw, v) != nil {
		return nil, invalidRequest(400, name+" must be "+want, name, "invalid_type")
	}
	return v, nil
}

// decodeScalar decodes a JSON true/false into a *bool, an integer literal into an *int64 and
// a string without escapes into a *string, as encoding/json would (it reports false for
// anything else, which encoding/json decides). raw is valid JSON.
func decodeScalar(raw []byte, v any) bool {
	switch p := v.(type) {
	case *string:
		if len(raw) >= 2 && raw[0] == '"' && !bytes.ContainsRune(raw, '\\') && utf8.Valid(raw) {
			*p = string(raw[1 : len(raw)-1])
			return true
		}
	case *bool:
		switch string(raw) {
		case "true":
			*p = true
			return true
		case "false":
			*p = false
			return true
		}
	case *int64:
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil { // raw is valid JSON
			*p = n
			return true
		}
	}
	return false
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }
