package configwatch

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestFileDeliversChangesOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte("a"), 0o644)
	got := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- File(ctx, path, quiet, func(b []byte) { got <- string(b) }) }()
	next := func() string {
		select {
		case s := <-got:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery")
			return ""
		}
	}
	if s := next(); s != "a" {
		t.Fatalf("first = %q", s)
	}
	os.WriteFile(filepath.Join(dir, "unrelated"), []byte("x"), 0o644) // same content: no delivery
	os.WriteFile(path, []byte("b"), 0o644)                            // in-place write
	if s := next(); s != "b" {
		t.Fatalf("second = %q", s)
	}
	tmp := filepath.Join(dir, "new")
	os.WriteFile(tmp, []byte("c"), 0o644)
	os.Rename(tmp, path) // atomic replace
	if s := next(); s != "c" {
		t.Fatalf("third = %q", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		t.Fatalf("unexpected delivery %q", s)
	default:
	}
}

func TestFileMissing(t *testing.T) {
	if err := File(context.Background(), filepath.Join(t.TempDir(), "nope"), quiet, func([]byte) {}); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestParseRef(t *testing.T) {
	if ns, n, err := ParseRef("ai/qwen3-gateway"); err != nil || ns != "ai" || n != "qwen3-gateway" {
		t.Fatalf("%s %s %v", ns, n, err)
	}
	for _, bad := range []string{"", "x", "/x", "x/", "a/b/c"} {
		if _, _, err := ParseRef(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
