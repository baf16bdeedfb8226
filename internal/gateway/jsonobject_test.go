package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// FuzzParseObject holds the request splitter to encoding/json's meaning: a body splits
// exactly when it decodes into a JSON object, every key's value (the last of duplicates) is
// the one encoding/json keeps, and re-encoding with no edits gives the same object.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"x"}]}`,
		`{}`, ` { "a" : 1 , "b" : [ 1 , { "c" : "}" } ] } `, `{"a":1,"a":2}`, `{"\u0061":"\"}"}`,
		`{"a":}`, `{"a":1,}`, `{"a" 1}`, `{"a":1}x`, `[1]`, `"s"`, `{"a":tru}`, `{"a":"\`, `{`, ``,
		`{"a":1e5,"b":-0.5,"c":null,"d":false}`, `{"a":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want map[string]json.RawMessage
		werr := json.Unmarshal(body, &want)
		o, err := parseObject(body)
		if (err == nil) != (werr == nil && want != nil) {
			t.Fatalf("%q: parseObject err %v, encoding/json err %v (map %v)", body, err, werr, want != nil)
		}
		if err != nil {
			return
		}
		for k, v := range want {
			got, ok := o.get(k)
			if !ok || !sameJSON(got, v) {
				t.Fatalf("%q: %q = %s, encoding/json has %s", body, k, got, v)
			}
		}
		if len(o) != len(want) {
			t.Fatalf("%q: %d members, encoding/json keeps %d keys", body, len(o), len(want))
		}
		var again map[string]json.RawMessage
		if err := json.Unmarshal(o.with(nil), &again); err != nil || len(again) != len(want) {
			t.Fatalf("%q: re-encoded %s: %v", body, o.with(nil), err)
		}
	})
}

// TestManyDuplicatedMembers: a body of 20 000 keys, each sent twice, splits into 20 000
// members holding the second values, so that nothing after the split (get, with, the cache
// key) has to look for duplicates, which would cost a client's body quadratic time.
func TestManyDuplicatedMembers(t *testing.T) {
	const n = 20000
	var b bytes.Buffer
	b.WriteByte('{')
	for round := range 2 {
		for i := range n {
			if b.Len() > 1 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":%d`, i, round)
		}
	}
	b.WriteByte('}')
	o, err := parseObject(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(o) != n {
		t.Fatalf("%d members, want %d distinct keys", len(o), n)
	}
	for _, k := range []string{"k0", "k7", "k19999"} {
		if v, _ := o.get(k); string(v) != "1" {
			t.Errorf("%s = %s, want the last value 1", k, v)
		}
	}
	var m map[string]int
	if err := json.Unmarshal(o.with([]edit{{key: "k7", val: []byte("2")}}), &m); err != nil || len(m) != n || m["k7"] != 2 || m["k8"] != 1 {
		t.Errorf("with: %d keys, k7 %d, k8 %d, err %v", len(m), m["k7"], m["k8"], err)
	}
}

func sameJSON(a, b []byte) bool {
	var x, y bytes.Buffer
	return json.Compact(&x, a) == nil && json.Compact(&y, b) == nil && bytes.Equal(x.Bytes(), y.Bytes())
}

func TestScanObjectNeverPanicsOnMalformedBodies(t *testing.T) {
	for _, s := range []string{`{"a":[1,2}`, `{"a":"x`, `{"a":{"b":1}`, `{"a":[`, `{"a":]`, `{"a`, `{"a":1 "b":2}`, `{,}`} {
		if _, err := scanObject([]byte(s)); err == nil {
			t.Errorf("%s: split without error", s)
		}
	}
}

func TestResponseUsageReadsOnlyTheTopLevelUsage(t *testing.T) {
	for _, tt := range []struct {
		body string
		want *usage
	}{
		{`{"choices":[{"message":{"content":"\"usage\":{\"prompt_tokens\":99}"}}],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`, &usage{PromptTokens: 3, CompletionTokens: 5, TotalTokens: 8}},
		{`{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"choices":[{"usage":{"prompt_tokens":7}}]}`, &usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}},
		{`{"choices":[{"usage":{"prompt_tokens":7}}]}`, nil},
		{`{"usage":null}`, nil},
		{`{"usage":{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1},"completion_tokens":5,"total_tokens":8}}`, &usage{PromptTokens: 3, CompletionTokens: 5, TotalTokens: 8}},
		{`{"usage":{"prompt_tokens":2}}`, &usage{PromptTokens: 2}},
		{`{"usage":{"prompt_tokens":1e2,"completion_tokens":0,"total_tokens":100}}`, nil},
		{`{"usage":[1]}`, nil},
		{`{"usage":{"prompt_tokens":"x"}}`, nil},
		{`{"choices":[`, nil},
	} {
		got := responseUsage([]byte(tt.body))
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("%s: usage %+v, want %+v", tt.body, got, tt.want)
		}
	}
}

func TestChunkUsage(t *testing.T) {
	for _, tt := range []struct {
		chunk string
		want  *usage
		only  bool
	}{
		{`{"choices":[{"delta":{"content":"x"}}],"usage":null}`, nil, false},
		{`{"choices":[{"delta":{"content":"\"usage\":{\"prompt_tokens\":9}"}}],"usage":null}`, nil, false},
		{`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`, &usage{PromptTokens: 3, CompletionTokens: 5, TotalTokens: 8}, true},
		{`{"choices":[ ],"usage":{"prompt_tokens":3}}`, &usage{PromptTokens: 3}, true},
		{`{"usage":{"prompt_tokens":3}}`, &usage{PromptTokens: 3}, true},
		{`{"choices":[{"delta":{}}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`, &usage{PromptTokens: 3, CompletionTokens: 1, TotalTokens: 4}, false},
		{`{"choices":1,"usage":{"prompt_tokens":3}}`, &usage{PromptTokens: 3}, false},
		{`{"choices":[],"usage":{"prompt_tokens":"3"}}`, nil, false},
		{`{"choices":[],"usage":`, nil, false},
	} {
		u, only := chunkUsage([]byte(tt.chunk))
		if (u == nil) != (tt.want == nil) || u != nil && *u != *tt.want || only != tt.only {
			t.Errorf("%s: %+v %v, want %+v %v", tt.chunk, u, only, tt.want, tt.only)
		}
	}
}

// TestDecodeScalarAgreesWithEncodingJSON: the fast decoding of strings, booleans and integers
// gives encoding/json's value whenever it decodes at all.
func TestDecodeScalarAgreesWithEncodingJSON(t *testing.T) {
	for _, raw := range []string{`"Qwen3-1.7B"`, `""`, `"你好"`, `"a\"b"`, `"\u0041"`, "\"\xff\"", `true`, `false`, `0`, `-12`, `9223372036854775807`, `9223372036854775808`, `1.5`, `1e3`, `null`, `[1]`} {
		var s1, s2 string
		var b1, b2 bool
		var i1, i2 int64
		for _, c := range []struct {
			fast, slow any
			eq         func() bool
		}{{&s1, &s2, func() bool { return s1 == s2 }}, {&b1, &b2, func() bool { return b1 == b2 }}, {&i1, &i2, func() bool { return i1 == i2 }}} {
			if decodeScalar([]byte(raw), c.fast) && (json.Unmarshal([]byte(raw), c.slow) != nil || !c.eq()) {
				t.Errorf("%s into %T: fast %v, encoding/json %v", raw, c.fast, c.fast, c.slow)
			}
		}
	}
}
