package gateway

import (
	"encoding/json"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name, ct, body string
		ep             endpoint
		status         int
		param, code    string
	}{
		{name: "ok chat", body: `{"model":"m","messages":[{"role":"user","content":"hi"}]}`},
		{name: "ok completion", ep: completionsEndpoint, body: `{"model":"m","prompt":"hi"}`},
		{name: "ok with charset", ct: "application/json; charset=utf-8", body: `{"model":"m","messages":[{}]}`},
		{name: "no content type", ct: "-", body: `{"model":"m","messages":[{}]}`},
		{name: "form content type", ct: "application/x-www-form-urlencoded", body: `{}`, status: 400, code: "unsupported_content_type"},
		{name: "bad content type", ct: "text/plain; x", body: `{}`, status: 400, code: "unsupported_content_type"},
		{name: "malformed", body: `{"model":`, status: 400, code: "invalid_json"},
		{name: "array", body: `[1]`, status: 400, code: "invalid_json"},
		{name: "null", body: `null`, status: 400, code: "invalid_json"},
		{name: "empty", body: ``, status: 400, code: "invalid_json"},
		{name: "no model", body: `{"messages":[{}]}`, status: 400, param: "model"},
		{name: "model not string", body: `{"model":1,"messages":[{}]}`, status: 400, param: "model"},
		{name: "no messages", body: `{"model":"m"}`, status: 400, param: "messages"},
		{name: "empty messages", body: `{"model":"m","messages":[]}`, status: 400, param: "messages"},
		{name: "no prompt", ep: completionsEndpoint, body: `{"model":"m"}`, status: 400, param: "prompt"},
		{name: "stream not bool", body: `{"model":"m","messages":[{}],"stream":"yes"}`, status: 400, param: "stream"},
		{name: "stream_options without stream", body: `{"model":"m","messages":[{}],"stream_options":{"include_usage":true}}`, status: 400, param: "stream_options"},
		{name: "stream_options not object", body: `{"model":"m","messages":[{}],"stream":true,"stream_options":true}`, status: 400, param: "stream_options"},
		{name: "stream_options array", body: `{"model":"m","messages":[{}],"stream":true,"stream_options":[]}`, status: 400, param: "stream_options"},
		{name: "include_usage not bool", body: `{"model":"m","messages":[{}],"stream":true,"stream_options":{"include_usage":"yes"}}`, status: 400, param: "stream_options"},
		{name: "stream_options null", body: `{"model":"m","messages":[{}],"stream_options":null}`},
		{name: "max_tokens negative", body: `{"model":"m","messages":[{}],"max_tokens":-1}`, status: 400, param: "max_tokens"},
		{name: "max_tokens float", body: `{"model":"m","messages":[{}],"max_tokens":1.5}`, status: 400, param: "max_tokens"},
		{name: "enable_thinking not bool", body: `{"model":"m","messages":[{}],"enable_thinking":"no"}`, status: 400, param: "enable_thinking"},
		{name: "kwargs not object", body: `{"model":"m","messages":[{}],"chat_template_kwargs":[]}`, status: 400, param: "chat_template_kwargs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.ct
			if ct == "" {
				ct = "application/json"
			} else if ct == "-" {
				ct = ""
			}
			_, err := parseRequest(tt.ep, ct, []byte(tt.body))
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want status %d", tt.status)
			}
			if err.status != tt.status || (tt.param != "" && err.param != tt.param) || (tt.code != "" && err.code != tt.code) {
				t.Fatalf("got %d param=%q code=%q (%s)", err.status, err.param, err.code, err.message)
			}
		})
	}
}

func TestParseRequestFields(t *testing.T) {
	r, err := parseRequest(chatEndpoint, "application/json", []byte(`{"model":"m","stream":true,"stream_options":{"include_usage":true},
		"max_tokens":10,"max_completion_tokens":20,"messages":[{"role":"user","content":"0123456789012345678901234567890123456789"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.model != "m" || !r.stream || !r.includeUsage || r.maxTokens != 20 || r.promptTokens != 70/4 {
		t.Fatalf("model=%s stream=%v usage=%v max=%d prompt=%d", r.model, r.stream, r.includeUsage, r.maxTokens, r.promptTokens)
	}
}

func TestUpstreamBody(t *testing.T) {
	tests := []struct {
		name string
		ep   endpoint
		in   string
		rw   rewrite
		want string // compact JSON, members in the client's order; "same" = the client's bytes untouched
	}{
		{name: "untouched", in: `{"model":"m", "messages":[]}`, rw: rewrite{model: "m"}, want: "same"},
		{name: "model renamed", in: `{"model":"m","messages":[]}`, rw: rewrite{model: "e"}, want: `{"model":"e","messages":[]}`},
		{name: "enable_thinking mapped", in: `{"model":"m","enable_thinking":true}`, rw: rewrite{model: "m"},
			want: `{"model":"m","chat_template_kwargs":{"enable_thinking":true}}`},
		{name: "explicit kwargs win", in: `{"model":"m","enable_thinking":true,"chat_template_kwargs":{"enable_thinking":false,"x":1}}`, rw: rewrite{model: "m"},
			want: `{"model":"m","chat_template_kwargs":{"enable_thinking":false,"x":1}}`},
		{name: "null enable_thinking dropped", in: `{"model":"m","enable_thinking":null}`, rw: rewrite{model: "m"}, want: `{"model":"m"}`},
		{name: "L2 forces thinking off", in: `{"model":"m","enable_thinking":true,"chat_template_kwargs":{"enable_thinking":true,"y":2}}`, rw: rewrite{model: "m", disableThinking: true},
			want: `{"model":"m","chat_template_kwargs":{"enable_thinking":false,"y":2}}`},
		{name: "stream asks usage", in: `{"model":"m","stream":true}`, rw: rewrite{model: "m", stream: true},
			want: `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`},
		{name: "stream keeps other options", in: `{"model":"m","stream":true,"stream_options":{"continuous_usage_stats":true}}`, rw: rewrite{model: "m", stream: true},
			want: `{"model":"m","stream":true,"stream_options":{"continuous_usage_stats":true,"include_usage":true}}`},
		{name: "stream already asks usage", in: `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, rw: rewrite{model: "m", stream: true}, want: "same"},
		{name: "L1 turns stream off", in: `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, rw: rewrite{model: "m"},
			want: `{"model":"m","stream":false}`},
		{name: "duplicate keys: the last counts, once", in: `{"model":"a","model":"m","x":1,"x":2,"stream":true}`, rw: rewrite{model: "e"},
			want: `{"model":"e","x":2,"stream":false}`},
		{name: "escaped key", in: `{"model":"m","\u0078":1,"messages":[]}`, rw: rewrite{model: "e"}, want: `{"model":"e","\u0078":1,"messages":[]}`},
		{name: "completions keep enable_thinking", ep: completionsEndpoint, in: `{"model":"m","prompt":"p","enable_thinking":true}`, rw: rewrite{model: "m", disableThinking: true}, want: "same"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &request{ep: tt.ep, raw: []byte(tt.in)}
			var err error
			if r.fields, err = parseObject(r.raw); err != nil {
				t.Fatal(err)
			}
			raw, _ := r.fields.get("model")
			json.Unmarshal(raw, &r.model)
			r.decodeKnown()
			got, err := r.upstreamBody(tt.rw)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "same" {
				if string(got) != tt.in {
					t.Fatalf("body rewritten: %s", got)
				}
				return
			}
			if compact(string(got)) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
