package configwatch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// File reads path, calls onChange with its content, then watches the file's directory and
// calls onChange again whenever the content differs from the last delivered one. Watching
// the directory sees both in-place writes and the atomic ..data symlink swap of a ConfigMap
// volume. A read error after the start is logged and the last content stays in force. File
// returns when ctx is done, or at once when the first read or the watch setup fails.
func File(ctx context.Context, path string, log *slog.Logger, onChange func([]byte)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(path)); err != nil {
		return fmt.Errorf("watch %s: %w", filepath.Dir(path), err)
	}
	last, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	onChange(last)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("config watch error; re-reading", "path", path, "err", err)
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			// Between the steps of a symlink swap the file can be missing for a moment.
			log.Debug("config not readable", "path", path, "err", err)
			continue
		}
		if !bytes.Equal(data, last) {
			last = data
			onChange(data)
		}
	}
}

// Dir calls onChange whenever anything in dir changes (the API-keys Secret volume), until
// ctx is done.
func Dir(ctx context.Context, dir string, log *slog.Logger, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("watch error", "dir", dir, "err", err)
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			onChange()
		}
	}
}
