package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// return_reasoning: the seed's LangChain client sends `return_reasoning` at the top level of a
// chat request (extra_body) next to `enable_thinking`. With `return_reasoning: false` the
// gateway removes the reasoning (`reasoning_content`, and `reasoning`, the name newer vLLM
// versions use) from the answer: from each choice's message of a whole answer and from each
// choice's delta of a stream. The engine still thinks (that is enable_thinking's job) and the
// tokens are still counted and charged: the usage is the engine's. true or absent passes the
// reasoning through. The field itself is forwarded to the engine untouched.

// reasoningKeys are the fields of a message or delta that carry reasoning.
var reasoningKeys = []string{"reasoning_content", "reasoning"}

// decodeReturnReasoning reads return_reasoning (chat only): a boolean or absent, else 400.
func (r *request) decodeReturnReasoning() *apiError {
	v, err := optional[bool](r.fields, "return_reasoning", "a boolean")
	if err != nil {
		return err
	}
	r.hideReasoning = r.ep == chatEndpoint && v != nil && !*v
	return nil
}

// stripReasoning removes the reasoning from every choice's field (message or delta) of a
// chat completion or chunk. It returns body unchanged when there is none to remove or the
// body is not a JSON object with choices.
func stripReasoning(body []byte, field string) []byte {
	if !bytes.Contains(body, []byte(`"reasoning`)) {
		return body
	}
	var obj map[string]json.RawMessage
	var choices []map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || json.Unmarshal(obj["choices"], &choices) != nil {
		return body
	}
	changed := false
	for _, ch := range choices {
		var m map[string]json.RawMessage
		if json.Unmarshal(ch[field], &m) != nil || m == nil {
			continue
		}
		for _, k := range reasoningKeys {
			if _, ok := m[k]; ok {
				delete(m, k)
				changed = true
			}
		}
		ch[field] = marshalRaw(m)
	}
	if !changed {
		return body
	}
	obj["choices"] = marshalRaw(choices)
	return marshalRaw(obj)
}

// marshalRaw encodes v without HTML escaping (the engine's text stays as it sent it).
func marshalRaw(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // maps of raw JSON always encode
	return bytes.TrimRight(b.Bytes(), "\n")
}

// reasoningStripper is the client's writer of a stream whose reasoning is removed: pipeSSE
// writes one line per call, and each data line loses the reasoning of its deltas.
type reasoningStripper struct{ http.ResponseWriter }

// Flush flushes the writer underneath.
func (s reasoningStripper) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Write writes one line of the stream, without reasoning.
func (s reasoningStripper) Write(line []byte) (int, error) {
	data, ok := bytes.CutPrefix(line, dataPrefix)
	if !ok || !bytes.Contains(data, []byte(`"reasoning`)) {
		return s.ResponseWriter.Write(line)
	}
	out := stripReasoning(bytes.TrimSpace(data), "delta")
	if _, err := s.ResponseWriter.Write(append(append([]byte("data: "), out...), '\n')); err != nil {
		return 0, err
	}
	return len(line), nil
}
