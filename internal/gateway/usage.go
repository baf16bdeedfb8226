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
// an embedding's (prompt tokens only) or a Response's.
func responseUsage(body []byte) *usage {
	var r struct {
		Usage *usage `json:"usage"`
	}
	if json.Unmarshal(body, &r) != nil {
		return nil
	}
	return r.Usage.normalize()
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
	var c struct {
		Choices []json.RawMessage `json:"choices"`
		Usage   *usage            `json:"usage"`
	}
	if json.Unmarshal(data, &c) != nil || c.Usage == nil {
		return nil, false
	}
	return c.Usage, len(c.Choices) == 0
}
