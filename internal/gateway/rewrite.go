package gateway

import (
	"encoding/json"
)

// rewrite is what the gateway changes in a request before sending it upstream.
type rewrite struct {
	model           string // the upstream's model name
	stream          bool   // call the upstream with stream: true
	disableThinking bool   // chat_template_kwargs.enable_thinking = false (L2)
}

var (
	jsonTrue  = json.RawMessage("true")
	jsonFalse = json.RawMessage("false")
)

// upstreamBody returns the body to send upstream. It maps a top-level enable_thinking into
// chat_template_kwargs (an explicit chat_template_kwargs.enable_thinking wins), sets the
// model, asks a streaming upstream for usage, and turns streaming off when rw.stream is false.
// The client's bytes are reused when nothing changes.
func (r *request) upstreamBody(rw rewrite) ([]byte, error) {
	changed := false
	f := r.fields
	set := func(k string, v json.RawMessage) {
		f[k] = v
		changed = true
	}
	if rw.model != r.model {
		b, _ := json.Marshal(rw.model)
		set("model", b)
	}
	if r.ep == chatEndpoint {
		thinking, hasThinking := f["enable_thinking"]
		if hasThinking {
			delete(f, "enable_thinking")
			changed = true
		}
		if rw.disableThinking {
			thinking, hasThinking = jsonFalse, true
		} else if hasThinking && isNull(thinking) {
			hasThinking = false
		}
		if hasThinking {
			kw := map[string]json.RawMessage{}
			if raw, ok := f["chat_template_kwargs"]; ok && !isNull(raw) {
				if err := json.Unmarshal(raw, &kw); err != nil {
					return nil, err
				}
			}
			if _, explicit := kw["enable_thinking"]; !explicit || rw.disableThinking {
				kw["enable_thinking"] = thinking
				b, err := json.Marshal(kw)
				if err != nil {
					return nil, err
				}
				set("chat_template_kwargs", b)
			}
		}
	}
	switch {
	case !r.ep.completion(): // passed through as sent
	case rw.stream && !r.includeUsage:
		so := map[string]json.RawMessage{}
		if raw, ok := f["stream_options"]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &so); err != nil {
				return nil, err
			}
		}
		so["include_usage"] = jsonTrue
		b, err := json.Marshal(so)
		if err != nil {
			return nil, err
		}
		set("stream_options", b)
	case !rw.stream && r.stream:
		set("stream", jsonFalse)
		delete(f, "stream_options")
	}
	if !changed {
		return r.raw, nil
	}
	return json.Marshal(f)
}
