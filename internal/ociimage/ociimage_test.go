package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// TestWriteReadsBack writes an image and follows the layout as an importer does: index.json
// → manifest → config and layer, each blob under its digest.
func TestWriteReadsBack(t *testing.T) {
	img := Image{
		Name:       "ghcr.io/qwenops/qwen-gateway:0.1.0",
		Files:      []File{{Path: "/gateway", Mode: 0o755, Data: []byte("binary")}, {Path: "/etc/passwd", Mode: 0o644, Data: []byte("nonroot:x:65532:65532::/:/sbin/nologin\n")}},
		Entrypoint: []string{"/gateway"},
		User:       "65532:65532",
		Arch:       "amd64",
	}
	var buf bytes.Buffer
	d, err := Write(&buf, img)
	if err != nil {
		t.Fatal(err)
	}
	files := untar(t, buf.Bytes())
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout: %s", files["oci-layout"])
	}
	var idx indexJSON
	mustJSON(t, files["index.json"], &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != d.Digest ||
		idx.Manifests[0].Annotations[annotationImageName] != img.Name || idx.Manifests[0].Annotations[annotationRefName] != "0.1.0" {
		t.Fatalf("index: %+v (returned %+v)", idx, d)
	}
	var m manifest
	mustJSON(t, blob(t, files, d.Digest), &m)
	var cfg imageConfig
	mustJSON(t, blob(t, files, m.Config.Digest), &cfg)
	if cfg.Config.User != "65532:65532" || strings.Join(cfg.Config.Entrypoint, " ") != "/gateway" || cfg.Architecture != "amd64" || cfg.OS != "linux" {
		t.Errorf("config: %+v", cfg)
	}
	layer := blob(t, files, m.Layers[0].Digest)
	if cfg.RootFS.DiffIDs[0] != digest(layer) {
		t.Errorf("diff_id %s, layer %s", cfg.RootFS.DiffIDs[0], digest(layer))
	}
	inLayer := untar(t, layer)
	if string(inLayer["gateway"]) != "binary" || !strings.Contains(string(inLayer["etc/passwd"]), "65532") {
		t.Errorf("layer files: %v", keys(inLayer))
	}
	if _, ok := inLayer["etc/"]; !ok {
		t.Errorf("layer lacks the parent directory etc/: %v", keys(inLayer))
	}

	// The same input gives the same bytes (and digests).
	var again bytes.Buffer
	if _, err := Write(&again, img); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Errorf("a second write differs (%v)", err)
	}
}

func TestWriteRefusesBadInput(t *testing.T) {
	for name, img := range map[string]Image{
		"no tag":        {Name: "gateway", Files: []File{{Path: "/a"}}},
		"no files":      {Name: "x/y:1"},
		"relative path": {Name: "x/y:1", Files: []File{{Path: "a"}}},
		"unclean path":  {Name: "x/y:1", Files: []File{{Path: "/a/../b"}}},
		"duplicate":     {Name: "x/y:1", Files: []File{{Path: "/a"}, {Path: "/a"}}},
	} {
		if _, err := Write(io.Discard, img); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func untar(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[h.Name] = data
	}
}

func blob(t *testing.T, files map[string][]byte, d string) []byte {
	t.Helper()
	b, ok := files[blobPath(d)]
	if !ok || digest(b) != d {
		t.Fatalf("blob %s missing or corrupt", d)
	}
	return b
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
