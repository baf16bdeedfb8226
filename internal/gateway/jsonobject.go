package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"unicode/utf8"
)

// object is a JSON object's top-level members in the order of the body, each value the raw
// bytes of the body (not copied, not decoded). The gateway reads a few fields of every
// request and forwards the rest untouched, so it splits the body once instead of decoding it
// into a map: the split is a single pass that allocates one slice.
type object []member

// member is one key and its raw value. rawKey is the quoted key as written in the body, name
// the key itself (a view of the body unless the key has escapes): no string is allocated per
// key.
type member struct {
	name   []byte
	rawKey []byte
	val    json.RawMessage
}

var errNotObject = errors.New("not a JSON object")

// parseObject splits a JSON object into its members. Invalid JSON, and JSON that is not an
// object, is an error.
func parseObject(b []byte) (object, error) {
	if !json.Valid(b) {
		return nil, errNotObject
	}
	return scanObject(b)
}

// scanObject splits the object in b without validating the values (they are skipped by their
// brackets and quotes); a malformed body is an error, never a panic. Callers that forward the
// values validate first (parseObject).
func scanObject(b []byte) (object, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errNotObject
	}
	o := make(object, 0, 8)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return o, trailing(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, errNotObject
		}
		end := skipString(b, i)
		if end < 0 {
			return nil, errNotObject
		}
		m := member{rawKey: b[i:end]}
		if k := m.rawKey[1 : len(m.rawKey)-1]; !slices.Contains(k, '\\') && utf8.Valid(k) {
			m.name = k
		} else {
			var key string
			if json.Unmarshal(m.rawKey, &key) != nil {
				return nil, errNotObject
			}
			m.name = []byte(key)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, errNotObject
		}
		i = skipSpace(b, i+1)
		end = skipValue(b, i)
		if end < 0 {
			return nil, errNotObject
		}
		m.val = b[i:end:end]
		o = append(o, m)
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return o.dedupe(), trailing(b, i+1)
		}
		return nil, errNotObject
	}
}

// dedupe drops every member whose key appears again later in the object: encoding/json keeps
// the last value of a duplicated key, and so does the gateway. The keys are distinct afterwards,
// so nothing else has to look for duplicates. Linear in the number of members (a map beyond a
// few), whatever a client puts in its body.
func (o object) dedupe() object {
	const pairwise = 16 // up to here comparing every pair costs less than a map
	if len(o) <= pairwise {
		for i := range o {
			for j := i + 1; j < len(o); j++ {
				if bytes.Equal(o[i].name, o[j].name) {
					return o.dropEarlier()
				}
			}
		}
		return o
	}
	return o.dropEarlier()
}

// dropEarlier keeps the last member of each key, in place and in order.
func (o object) dropEarlier() object {
	last := make(map[string]int, len(o))
	for i, m := range o {
		last[string(m.name)] = i
	}
	if len(last) == len(o) {
		return o
	}
	out := o[:0]
	for i, m := range o {
		if last[string(m.name)] == i {
			out = append(out, m)
		}
	}
	return out
}

// get returns the value of key (keys are distinct: scanObject dropped earlier duplicates).
func (o object) get(key string) (json.RawMessage, bool) {
	for i := len(o) - 1; i >= 0; i-- {
		if string(o[i].name) == key {
			return o[i].val, true
		}
	}
	return nil, false
}

// edit is a change to an object: set a key to val, or delete it when val is nil.
type edit struct {
	key string
	val json.RawMessage
}

// with returns the object's JSON with the edits applied: members keep their order, a set key
// that was absent is appended.
func (o object) with(edits []edit) []byte {
	size := 2
	for _, m := range o {
		size += len(m.rawKey) + len(m.val) + 2
	}
	for _, e := range edits {
		size += len(e.key) + len(e.val) + 4
	}
	out := make([]byte, 0, size)
	out = append(out, '{')
	comma := func() {
		if len(out) > 1 {
			out = append(out, ',')
		}
	}
	done := make([]bool, len(edits))
	for _, m := range o {
		val := m.val
		for j, e := range edits {
			if e.key == string(m.name) {
				val, done[j] = e.val, true
			}
		}
		if val == nil {
			continue
		}
		comma()
		out = append(append(append(out, m.rawKey...), ':'), val...)
	}
	for j, e := range edits {
		if done[j] || e.val == nil {
			continue
		}
		comma()
		k, _ := json.Marshal(e.key)
		out = append(append(append(out, k...), ':'), e.val...)
	}
	return append(out, '}')
}

func trailing(b []byte, i int) error {
	if skipSpace(b, i) != len(b) {
		return errNotObject
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] ('"'), or -1.
func skipString(b []byte, i int) int {
	for i++; i < len(b); {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1
		}
		i += q
		// The quote ends the string unless an odd number of backslashes escapes it.
		bs := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return i + 1
		}
		i++
	}
	return -1
}

// skipValue returns the index after the value that starts at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				if i = skipString(b, i); i < 0 {
					return -1
				}
				i--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default:
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		if i == start {
			return -1
		}
		return i
	}
}
