package gateway

import (
	"bytes"
	"encoding/json"
)

// usage is the OpenAI usage object. The Responses API names its fields input_tokens and
// output_tokens; normalize folds them into prompt and completion tokens.
type usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
	InputTokens      int64 `json:"input_tokens,omitempty"`
	OutputTokens     int64 `json:"output_tokens,omitempty"`
}

// normalize moves a Response's input and output tokens to prompt and completion tokens.
func (u *usage) normalize() *usage {
	if u != nil && (u.InputTokens != 0 || u.OutputTokens != 0) {
		u.PromptTokens, u.CompletionTokens = u.InputTokens, u.OutputTokens
		u.InputTokens, u.OutputTokens = 0, 0
	}
	return u
}

// responseUsage reads the usage of a non-streaming response (nil if absent): a completion's,
// an embedding's (prompt tokens only) or a Response's. Only the usage member is decoded: the
// choices are skipped by their brackets, not parsed.
func responseUsage(body []byte) *usage {
	o, err := scanObject(body)
	if err != nil {
		return nil
	}
	raw, ok := o.get("usage")
	if !ok {
		return nil
	}
	return decodeUsage(raw)
}

// decodeUsage decodes a usage object (a Response's input and output tokens normalized); null,
// and anything that is not a usage object, is nil. Its counts are read directly; other
// members (details) are skipped.
func decodeUsage(raw []byte) *usage {
	o, err := scanObject(raw)
	if err != nil {
		return nil
	}
	u := &usage{}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"prompt_tokens", &u.PromptTokens}, {"completion_tokens", &u.CompletionTokens}, {"total_tokens", &u.TotalTokens},
		{"input_tokens", &u.InputTokens}, {"output_tokens", &u.OutputTokens}} {
		v, ok := o.get(f.name)
		if !ok || isNull(v) {
			continue
		}
		if !decodeScalar(v, f.dst) && json.Unmarshal(v, f.dst) != nil {
			return nil
		}
	}
	return u.normalize()
}

var usageField = []byte(`"usage"`)

// chunkUsage reads the usage of a stream chunk. usageOnly is true for the extra final chunk
// that stream_options.include_usage adds (no choices, usage set).
func chunkUsage(data []byte) (u *usage, usageOnly bool) {
	i := bytes.Index(data, usageField)
	if i < 0 {
		return nil, false
	}
	if rest := bytes.TrimLeft(data[i+len(usageField):], " \t:"); bytes.HasPrefix(rest, []byte("null")) {
		// Most chunks carry "usage":null; skip decoding them. A chunk whose usage key
		// appears only inside content would have an escaped quote, so this is exact.
		if bytes.Count(data, usageField) == 1 {
			return nil, false
		}
	}
	o, err := scanObject(data)
	if err != nil {
		return nil, false
	}
	raw, ok := o.get("usage")
	if !ok {
		return nil, false
	}
	if u = decodeUsage(raw); u == nil {
		return nil, false
	}
	choices, _ := o.get("choices")
	empty := len(choices) == 0 || isNull(choices) || choices[0] == '[' && choices[skipSpace(choices, 1)] == ']'
	return u, empty
}
