package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

var (
	dataPrefix = []byte("data:")
	doneData   = []byte("[DONE]")
	deltaType  = []byte(`.delta"`)
)

// setSSEHeaders sets the headers of an event stream.
func setSSEHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
}

// errClientGone is returned when writing to the client failed.
var errClientGone = errors.New("client went away")

// streamed is what pipeSSE saw of a stream.
type streamed struct {
	// usage is the last usage reported, nil if none was.
	usage *usage
	// chunks counts the data events other than [DONE] and the usage-only chunk: about one
	// token each, what a stream cut short before its usage is charged for.
	chunks int64
	// done reports that data: [DONE] arrived: the stream is complete.
	done bool
}

// pipeSSE copies an upstream event stream to w event by event. Whole events are flushed to
// the client whenever the next read would wait for the upstream: every event leaves as soon
// as it is complete, and events that arrived together leave in one write, as nginx sends
// what it read in one go. It reads usage from the chunks and drops the usage-only chunk
// unless keepUsage. firstChunk is called before the first data event is written (of a
// Responses stream, the first delta event). It returns what it saw, and errClientGone when a
// write fails, the upstream's read error otherwise (nil at the end of the upstream's body,
// with or without [DONE]).
//
// A Responses stream (responses true) has no [DONE] and no usage chunk: it is done at the
// event that ends the Response, whose usage it carries.
func pipeSSE(w http.ResponseWriter, upstream io.Reader, keepUsage, responses bool, firstChunk func()) (streamed, error) {
	var s streamed
	flusher, _ := w.(http.Flusher)
	br := sseReaders.Get().(*bufio.Reader)
	br.Reset(upstream)
	defer func() {
		br.Reset(nil)
		sseReaders.Put(br)
	}()
	dropping, started, pending := false, false, false
	for {
		if pending && flusher != nil && !lineBuffered(br) {
			flusher.Flush()
			pending = false
		}
		line, err := readLine(br)
		if len(line) > 0 {
			blank := len(bytes.TrimRight(line, "\r\n")) == 0
			skip := false
			switch {
			case blank && dropping:
				dropping, skip = false, true
			case !blank:
				if data, ok := bytes.CutPrefix(line, dataPrefix); ok {
					data = bytes.TrimSpace(data)
					var u *usage
					only := false
					if responses {
						if eu, end := responsesEventEnd(data); end {
							s.usage, s.done = eu, true
						}
					} else {
						u, only = chunkUsage(data)
					}
					if u != nil {
						s.usage = u
						if only && !keepUsage {
							dropping, skip = true, true
						}
					}
					done := bytes.Equal(data, doneData)
					s.done = s.done || done
					if !done && !only {
						s.chunks++
					}
					// A Response's first token is its first delta event, not response.created.
					if !skip && !started && !done && (!responses || bytes.Contains(data, deltaType)) {
						started = true
						if firstChunk != nil {
							firstChunk()
						}
					}
				}
			}
			if !skip {
				if _, werr := w.Write(line); werr != nil {
					return s, errClientGone
				}
				pending = pending || blank
			}
		}
		if err == io.EOF {
			if flusher != nil {
				flusher.Flush()
			}
			return s, nil
		}
		if err != nil {
			return s, err
		}
	}
}

// sseReaders recycles pipeSSE's 16 KiB read buffers: a stream otherwise allocates (and
// clears) one.
var sseReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

// lineBuffered reports whether a whole line is already buffered: reading it will not wait.
func lineBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// readLine returns the next line including its '\n' (the last line may lack it), however long.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	long := append([]byte(nil), line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		line, err = br.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
}

// completion is the part of a non-streaming response that the SSE conversion rewrites.
type completion struct {
	ID                string                       `json:"id"`
	Object            string                       `json:"object"`
	Created           int64                        `json:"created"`
	Model             string                       `json:"model"`
	SystemFingerprint json.RawMessage              `json:"system_fingerprint,omitempty"`
	Choices           []map[string]json.RawMessage `json:"choices"`
	Usage             *usage                       `json:"usage,omitempty"`
}

// completionToSSE turns a non-streaming completion response into the event stream a
// streaming client expects: one chunk carrying every choice whole, a usage chunk when
// includeUsage, and data: [DONE]. A non-nil fingerprint replaces the system_fingerprint.
func completionToSSE(ep endpoint, body []byte, includeUsage bool, fingerprint json.RawMessage) ([]byte, *usage, error) {
	var c completion
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, nil, fmt.Errorf("upstream returned invalid JSON: %w", err)
	}
	if fingerprint != nil {
		c.SystemFingerprint = fingerprint
	}
	chunk := c
	chunk.Usage = nil
	chunk.Choices = make([]map[string]json.RawMessage, len(c.Choices))
	if ep == chatEndpoint {
		chunk.Object = "chat.completion.chunk"
		for i, ch := range c.Choices {
			delta, err := messageToDelta(ch["message"])
			if err != nil {
				return nil, nil, err
			}
			chunk.Choices[i] = map[string]json.RawMessage{
				"index": ch["index"], "delta": delta, "logprobs": orNull(ch["logprobs"]),
				"finish_reason": orNull(ch["finish_reason"]),
			}
		}
	} else {
		chunk.Object = "text_completion"
		copy(chunk.Choices, c.Choices)
	}
	var buf bytes.Buffer
	if err := writeEvent(&buf, chunk); err != nil {
		return nil, nil, err
	}
	if includeUsage && c.Usage != nil {
		tail := chunk
		tail.Choices = []map[string]json.RawMessage{}
		tail.Usage = c.Usage
		if err := writeEvent(&buf, tail); err != nil {
			return nil, nil, err
		}
	}
	buf.WriteString("data: [DONE]\n\n")
	return buf.Bytes(), c.Usage, nil
}

// messageToDelta turns a choice's message into a stream delta: the same fields, with the
// index every streamed tool call carries.
func messageToDelta(msg json.RawMessage) (json.RawMessage, error) {
	if len(msg) == 0 || isNull(msg) {
		return json.RawMessage(`{}`), nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		return nil, fmt.Errorf("upstream message is not an object: %w", err)
	}
	if raw, ok := m["tool_calls"]; ok && !isNull(raw) {
		var calls []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &calls); err != nil {
			return nil, fmt.Errorf("upstream tool_calls: %w", err)
		}
		for i := range calls {
			if calls[i] == nil { // [null]: json leaves the map nil
				return nil, fmt.Errorf("upstream tool_calls[%d] is not an object", i)
			}
			calls[i]["index"] = json.RawMessage(fmt.Sprint(i))
		}
		m["tool_calls"], _ = json.Marshal(calls)
	}
	return json.Marshal(m)
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

func writeEvent(buf *bytes.Buffer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf.WriteString("data: ")
	buf.Write(b)
	buf.WriteString("\n\n")
	return nil
}
