package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
)

// endpoint is one of the two completion endpoints.
type endpoint int

const (
	chatEndpoint endpoint = iota
	completionsEndpoint
)

func (e endpoint) path() string {
	if e == chatEndpoint {
		return "/v1/chat/completions"
	}
	return "/v1/completions"
}

// request is a parsed completion request. Unknown fields are kept and forwarded as they are.
type request struct {
	ep     endpoint
	raw    []byte
	fields map[string]json.RawMessage

	model        string
	stream       bool  // the client asked for SSE
	includeUsage bool  // the client asked for the usage chunk (stream_options.include_usage)
	promptTokens int64 // estimate: bytes of messages (or prompt) / 4
	maxTokens    int64 // max_completion_tokens, else max_tokens, else 0 (not set)
	choices      int64 // the sequences the engine generates: max(n, best_of, 1)
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
	if err := json.Unmarshal(body, &r.fields); err != nil || r.fields == nil {
		return nil, invalidRequest(400, "We could not parse the JSON body of your request: it must be a JSON object.", "", "invalid_json")
	}
	if err := r.decodeKnown(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *request) decodeKnown() *apiError {
	if raw, ok := r.fields["model"]; !ok || json.Unmarshal(raw, &r.model) != nil || r.model == "" {
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
		var msgs []json.RawMessage
		if json.Unmarshal(r.fields["messages"], &msgs) != nil || len(msgs) == 0 {
			return invalidRequest(400, "messages must be a non-empty array", "messages", "invalid_messages")
		}
		r.promptTokens = int64(len(r.fields["messages"]) / bytesPerToken)
		if _, err := optional[bool](r.fields, "enable_thinking", "a boolean"); err != nil {
			return err
		}
		if _, err := optional[map[string]json.RawMessage](r.fields, "chat_template_kwargs", "an object"); err != nil {
			return err
		}
		if err := r.decodeReturnReasoning(); err != nil {
			return err
		}
	} else {
		p := r.fields["prompt"]
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
	raw, ok := r.fields["stream_options"]
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

// optional decodes an optional field; absent and null give nil.
func optional[T any](fields map[string]json.RawMessage, name, want string) (*T, *apiError) {
	raw, ok := fields[name]
	if !ok || isNull(raw) {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, invalidRequest(400, name+" must be "+want, name, "invalid_type")
	}
	return v, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }
