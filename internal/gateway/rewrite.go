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
// The client's bytes are reused when nothing changes; otherwise the other members are copied
// as they are, in their order.
func (r *request) upstreamBody(rw rewrite) ([]byte, error) {
	var edits []edit
	f := r.fields
	if rw.model != r.model {
		b, _ := json.Marshal(rw.model)
		edits = append(edits, edit{"model", b})
	}
	if r.ep == chatEndpoint {
		thinking, hasThinking := f.get("enable_thinking")
		if hasThinking {
			edits = append(edits, edit{key: "enable_thinking"})
		}
		if rw.disableThinking {
			thinking, hasThinking = jsonFalse, true
		} else if hasThinking && isNull(thinking) {
			hasThinking = false
		}
		if hasThinking {
			kw, err := nested(f, "chat_template_kwargs")
			if err != nil {
				return nil, err
			}
			if _, explicit := kw.get("enable_thinking"); !explicit || rw.disableThinking {
				edits = append(edits, edit{"chat_template_kwargs", kw.with([]edit{{"enable_thinking", thinking}})})
			}
		}
	}
	switch {
	case !r.ep.completion(): // passed through as sent
	case rw.stream && !r.includeUsage:
		so, err := nested(f, "stream_options")
		if err != nil {
			return nil, err
		}
		edits = append(edits, edit{"stream_options", so.with([]edit{{"include_usage", jsonTrue}})})
	case !rw.stream && r.stream:
		edits = append(edits, edit{"stream", jsonFalse}, edit{key: "stream_options"})
	}
	if len(edits) == 0 {
		return r.raw, nil
	}
	return f.with(edits), nil
}

// nested returns the members of the object at key (none when absent or null).
func nested(f object, key string) (object, error) {
	raw, ok := f.get(key)
	if !ok || isNull(raw) {
		return nil, nil
	}
	return scanObject(raw)
}
