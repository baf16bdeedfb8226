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
// calls onChange again whenever the content differs from the last delivered one (an empty
// file after the start is taken as a write in progress, not a config). Watching
// the directory sees both in-place writes and the atomic ..data symlink swap of a ConfigMap
// volume. A read error after the start is logged and the last content stays in force. File
// returns when ctx is done, or at once when the first read or the watch setup fails.
func File(ctx context.Context, path string, log *slog.Logger, onChange func([]byte)) error {
	var last []byte
	first := true
	return watch(ctx, filepath.Dir(path), log, func() error {
		data, err := os.ReadFile(path)
		switch {
		case err != nil && first:
			return err
		case err != nil:
			// Between the steps of a symlink swap the file can be missing for a moment.
			log.Debug("config not readable", "path", path, "err", err)
		case len(data) == 0 && !first:
			// An in-place write truncates before it writes: wait for the content.
			log.Debug("config empty, waiting for the write", "path", path)
		case first || !bytes.Equal(data, last):
			first, last = false, data
			onChange(data)
		}
		return nil
	})
}

// Dir calls onChange whenever anything in dir changes (the API-keys Secret volume), until
// ctx is done.
func Dir(ctx context.Context, dir string, log *slog.Logger, onChange func()) error {
	started := false
	return watch(ctx, dir, log, func() error {
		if started {
			onChange()
		}
		started = true
		return nil
	})
}

// watch calls check once the watch on dir is in place (so no change can slip between the
// first read and the watch), then after every event or watch error in dir, until ctx is
// done. An error from check stops the watch and is returned.
func watch(ctx context.Context, dir string, log *slog.Logger, check func() error) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	for {
		if err := check(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("watch error; re-checking", "dir", dir, "err", err)
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
		}
	}
}
