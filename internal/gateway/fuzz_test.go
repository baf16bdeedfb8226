package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// FuzzParseAndRewrite feeds arbitrary bodies through parsing and the degradation rewrite of
// every level. Whatever parses must rewrite into a JSON object carrying the upstream model,
// thinking off from L2, usage asked for on upstream streams and streaming off at L1.
func FuzzParseAndRewrite(f *testing.F) {
	seeds := []string{
		`{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"Qwen3-1.7B","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"你好"}]}`,
		`{"model":"Qwen3-1.7B","enable_thinking":true,"return_reasoning":true,"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"Qwen3-1.7B","chat_template_kwargs":{"enable_thinking":true},"enable_thinking":false,"messages":[{}]}`,
		`{"model":"Qwen3-1.7B","prompt":"once upon","max_tokens":16,"stream":true}`,
		`{"model":"m","messages":[{}],"stream":true,"stream_options":{"continuous_usage_stats":true}}`,
		`{"model":"m","messages":[{}],"stream":false,"stream_options":null,"max_completion_tokens":5}`,
		`{"model":"m","model":"n","messages":[{}]}`,
		`{"model":`,
		`[]`,
		`{"model":"m","messages":[{}],"chat_template_kwargs":null,"enable_thinking":null}`,
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i%2), uint8(i%5))
	}
	f.Fuzz(func(t *testing.T, body []byte, ep, level uint8) {
		e := endpoint(ep % 2)
		req, aerr := parseRequest(e, "application/json", body)
		if aerr != nil {
			if aerr.status < 400 || aerr.message == "" {
				t.Fatalf("bad error %+v", aerr)
			}
			return
		}
		if req.choices < 1 || req.maxTokens < 0 {
			t.Fatalf("choices %d maxTokens %d", req.choices, req.maxTokens)
		}
		maxT, hasMax := req.fields.get("max_tokens")
		maxC, hasMaxC := req.fields.get("max_completion_tokens")
		if (hasMax && !isNull(maxT) || hasMaxC && !isNull(maxC)) && req.maxTokens < 1 {
			t.Fatalf("a max was set but the estimate has none: %s", body)
		}
		lvl := int(level % 5)
		rw := rewrite{model: "upstream-model", stream: req.stream && lvl < 1, disableThinking: lvl >= 2}
		out, err := req.upstreamBody(rw)
		if err != nil {
			t.Fatalf("rewrite failed on a parsed request: %v", err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("rewritten body is not a JSON object: %v\n%s", err, out)
		}
		var model string
		if json.Unmarshal(got["model"], &model) != nil || model != "upstream-model" {
			t.Fatalf("model = %s", got["model"])
		}
		if e == chatEndpoint {
			if _, ok := got["enable_thinking"]; ok {
				t.Fatalf("top-level enable_thinking forwarded: %s", out)
			}
			if rw.disableThinking {
				var kw map[string]json.RawMessage
				json.Unmarshal(got["chat_template_kwargs"], &kw)
				if string(kw["enable_thinking"]) != "false" {
					t.Fatalf("L2 left thinking on: %s", out)
				}
			}
		}
		var so struct {
			IncludeUsage bool `json:"include_usage"`
		}
		if rw.stream {
			if json.Unmarshal(got["stream_options"], &so) != nil || !so.IncludeUsage {
				t.Fatalf("stream without include_usage: %s", out)
			}
		}
		if req.stream && !rw.stream {
			if string(got["stream"]) != "false" || got["stream_options"] != nil {
				t.Fatalf("L1 left streaming on: %s", out)
			}
		}
	})
}

// FuzzPipeSSE feeds arbitrary upstream streams to the SSE pass-through: no panic, and every
// byte except a dropped usage chunk reaches the client.
func FuzzPipeSSE(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n"), false)
	f.Add([]byte("data: {\"choices\":[],\"usage\":{}}\r\n\r\ndata: [DONE]"), true)
	f.Add([]byte(": comment\nevent: x\ndata: {\"usage\":null}\n\n"), false)
	f.Fuzz(func(t *testing.T, in []byte, keepUsage bool) {
		w := httptest.NewRecorder()
		_, err := pipeSSE(w, bytes.NewReader(in), keepUsage, false, nil)
		if err != nil && err != io.EOF {
			t.Fatalf("err %v", err)
		}
		if keepUsage && !bytes.Equal(w.Body.Bytes(), in) {
			t.Fatalf("output differs from input with keepUsage")
		}
		if !keepUsage && w.Body.Len() > len(in) {
			t.Fatalf("output longer than input")
		}
	})
}

// FuzzCompletionToSSE feeds arbitrary engine replies to the L1 conversion (a whole completion
// turned into an event stream): an error or a stream ending in [DONE], never a panic.
func FuzzCompletionToSSE(f *testing.F) {
	f.Add([]byte(`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`), true, false)
	f.Add([]byte(`{"choices":[{"text":"once","index":0}]}`), false, true)
	f.Add([]byte(`{"choices":[null,{"message":null}]}`), true, true)
	f.Fuzz(func(t *testing.T, body []byte, chat, includeUsage bool) {
		ep := completionsEndpoint
		if chat {
			ep = chatEndpoint
		}
		sse, _, err := completionToSSE(ep, body, includeUsage, nil)
		if err != nil {
			return
		}
		if !bytes.HasSuffix(sse, []byte("data: [DONE]\n\n")) {
			t.Fatalf("no [DONE]: %q", sse)
		}
	})
}

// FuzzClientKey feeds arbitrary peers, X-Forwarded-For and key headers to the client
// identification: the address is the peer or one read from X-Forwarded-For, never one left of
// the trusted hops, and the limiter key never holds a header value.
func FuzzClientKey(f *testing.F) {
	f.Add("10.244.0.7:1234", "198.51.100.9, 203.0.113.1", "alice", uint8(1), uint8(64))
	f.Add("[2001:db8::1]:1", "2001:db8:1:2::1", "", uint8(0), uint8(128))
	f.Add("10.0.0.1:1", ",,, ,", "sk-secret", uint8(3), uint8(48))
	f.Add("garbage", "203.0.113.1", "x", uint8(1), uint8(16))
	f.Fuzz(func(t *testing.T, remote, xff, header string, hops, bits uint8) {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("X-User-Id", header)
		tr := trust{hops: int(hops % 4), proxies: []netip.Prefix{mustPrefix("10.0.0.0/8")}}
		ip := clientIP(r, tr)
		if peer := parseAddr(remote); ip != peer && !strings.Contains(xff, ip.String()) && !strings.Contains(strings.ToLower(xff), ip.String()) {
			if a := parseAddr(strings.TrimSpace(xff)); a != ip { // e.g. a v4-mapped entry, unmapped
				t.Fatalf("client %s is neither the peer %s nor from %q", ip, peer, xff)
			}
		}
		v6 := gatewayconfig.MinIPv6PrefixLength + int(bits)%(129-gatewayconfig.MinIPv6PrefixLength)
		c, aerr := identify(gatewayconfig.KeyHeader, "X-User-Id", v6, r, "", tr)
		if aerr != nil {
			if len(header) <= maxKeyHeaderBytes {
				t.Fatalf("a %d-byte header refused", len(header))
			}
			return
		}
		if header != "" && len(header) >= 8 && strings.Contains(c.key, header) {
			t.Fatalf("the limiter key %q holds the header value", c.key)
		}
	})
}
