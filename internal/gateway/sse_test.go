package gateway

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// flushRecorder is a ResponseWriter that hands what each Flush sends to flushed.
type flushRecorder struct {
	header  http.Header
	buf     bytes.Buffer
	flushed chan string
}

func (f *flushRecorder) Header() http.Header         { return f.header }
func (f *flushRecorder) WriteHeader(int)             {}
func (f *flushRecorder) Write(b []byte) (int, error) { return f.buf.Write(b) }
func (f *flushRecorder) Flush() {
	f.flushed <- f.buf.String()
	f.buf.Reset()
}

// TestPipeSSEFlushesBeforeWaitingAndCoalesces: events the engine sent together reach the client
// in one write, and that write happens before the gateway waits for the engine's next bytes
// (an event is never held back waiting for the next one).
func TestPipeSSEFlushesBeforeWaitingAndCoalesces(t *testing.T) {
	pr, pw := io.Pipe()
	w := &flushRecorder{header: http.Header{}, flushed: make(chan string, 16)}
	done := make(chan error, 1)
	go func() {
		_, err := pipeSSE(w, pr, true, false, nil)
		done <- err
	}()
	three := strings.Repeat(`data: {"choices":[{"delta":{"content":"x"}}]}`+"\n\n", 3)
	if _, err := pw.Write([]byte(three)); err != nil {
		t.Fatal(err)
	}
	// The engine now pauses: the three events must already be out, in one write.
	if got := <-w.flushed; got != three {
		t.Fatalf("first flush sent %q, want the three events together", got)
	}
	last := "data: [DONE]\n\n"
	if _, err := pw.Write([]byte(last)); err != nil {
		t.Fatal(err)
	}
	if got := <-w.flushed; got != last {
		t.Fatalf("second flush sent %q, want %q", got, last)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for len(w.flushed) > 0 {
		if got := <-w.flushed; got != "" {
			t.Fatalf("a later flush sent %q", got)
		}
	}
}

// TestReadSizedReadsWhateverTheHintSays: the declared length only sizes the buffer; a body
// longer or shorter than declared is read whole.
func TestReadSizedReadsWhateverTheHintSays(t *testing.T) {
	body := strings.Repeat("0123456789", 100)
	for _, hint := range []int64{-1, 0, 1, 999, 1000, 1001, 5000} {
		got, err := readSized(iotest.OneByteReader(strings.NewReader(body)), hint)
		if err != nil || string(got) != body {
			t.Errorf("hint %d: %d bytes, %v", hint, len(got), err)
		}
	}
}

// TestReadSizedDoesNotTrustALargeDeclaredLength: a client that declares a 1 MiB body and sends
// 1 KB gets a buffer of at most 64 KiB, not the 1 MiB it asked for.
func TestReadSizedDoesNotTrustALargeDeclaredLength(t *testing.T) {
	got, err := readSized(strings.NewReader(strings.Repeat("x", 1000)), 1<<20)
	if err != nil || len(got) != 1000 || cap(got) > 64<<10+1 {
		t.Fatalf("%d bytes in a %d-byte buffer, %v", len(got), cap(got), err)
	}
}
