// Package ociimage writes a container image as an OCI image-layout tarball, with no daemon and
// no registry: one layer of files, an image config and a name. `ctr images import` and
// `docker load` (Docker 25 and later) read the result. The output depends only on the input
// (fixed modification times, sorted entries), so the same binaries give the same digests.
package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Media types and annotations of the image layout.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
	// annotationImageName is the full reference containerd names an imported image by.
	annotationImageName = "io.containerd.image.name"
	// annotationRefName is the OCI tag of the manifest in the layout.
	annotationRefName = "org.opencontainers.image.ref.name"
)

// epoch is the modification time of every file in a layer.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// File is one regular file of the image's layer; its parent directories are added for it.
type File struct {
	// Path is absolute inside the image, e.g. /manager.
	Path string
	// Mode is the permission bits, e.g. 0o755 for a program.
	Mode fs.FileMode
	Data []byte
}

// Image is what Write puts in the tarball.
type Image struct {
	// Name is the full reference, e.g. ghcr.io/qwenops/qwen-gateway:0.1.0.
	Name  string
	Files []File
	// Entrypoint and Cmd are the config's; User is "UID:GID".
	Entrypoint, Cmd []string
	User            string
	Env             []string
	Labels          map[string]string
	// Arch is the GOARCH of the files; default runtime.GOARCH.
	Arch string
}

// Descriptor is what Write returns: the image's manifest digest.
type Descriptor struct {
	Name   string
	Digest string
	Size   int64
}

// Write writes img to w as an OCI image-layout tarball.
func Write(w io.Writer, img Image) (Descriptor, error) {
	if err := validate(img); err != nil {
		return Descriptor{}, err
	}
	layer, err := layerTar(img.Files)
	if err != nil {
		return Descriptor{}, err
	}
	arch := img.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	layerDigest := digest(layer)
	config, err := json.Marshal(imageConfig{
		Created:      epoch,
		Architecture: arch,
		OS:           "linux",
		Config: containerConfig{
			User: img.User, Env: img.Env, Entrypoint: img.Entrypoint, Cmd: img.Cmd,
			WorkingDir: "/", Labels: img.Labels,
		},
		RootFS:  rootFS{Type: "layers", DiffIDs: []string{layerDigest}},
		History: []history{{Created: epoch, CreatedBy: "ociimage.Write"}},
	})
	if err != nil {
		return Descriptor{}, err
	}
	manifest, err := json.Marshal(manifest{
		SchemaVersion: 2,
		MediaType:     mediaTypeManifest,
		Config:        descriptor{MediaType: mediaTypeConfig, Digest: digest(config), Size: int64(len(config))},
		Layers:        []descriptor{{MediaType: mediaTypeLayer, Digest: layerDigest, Size: int64(len(layer))}},
	})
	if err != nil {
		return Descriptor{}, err
	}
	manifestDesc := descriptor{
		MediaType: mediaTypeManifest, Digest: digest(manifest), Size: int64(len(manifest)),
		Annotations: map[string]string{annotationImageName: img.Name, annotationRefName: tag(img.Name)},
		Platform:    &platform{Architecture: arch, OS: "linux"},
	}
	index, err := json.Marshal(indexJSON{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: []descriptor{manifestDesc}})
	if err != nil {
		return Descriptor{}, err
	}
	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(layerDigest), layer},
		{blobPath(manifestDesc.Digest), manifest},
		{blobPath(digest(config)), config},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch}); err != nil {
			return Descriptor{}, err
		}
	}
	for _, e := range entries {
		if err := writeFile(tw, e.name, 0o644, e.data); err != nil {
			return Descriptor{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return Descriptor{}, err
	}
	return Descriptor{Name: img.Name, Digest: manifestDesc.Digest, Size: manifestDesc.Size}, nil
}

func validate(img Image) error {
	if img.Name == "" || !strings.Contains(img.Name, ":") {
		return fmt.Errorf("ociimage: name %q: want a full reference with a tag, e.g. ghcr.io/org/app:1.0", img.Name)
	}
	if len(img.Files) == 0 {
		return fmt.Errorf("ociimage: %s has no files", img.Name)
	}
	seen := map[string]bool{}
	for _, f := range img.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return fmt.Errorf("ociimage: %s: file path %q must be absolute and clean", img.Name, f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("ociimage: %s: file %q given twice", img.Name, f.Path)
		}
		seen[f.Path] = true
	}
	return nil
}

// tag is the part of a reference after the last colon that follows the last slash.
func tag(ref string) string {
	i := strings.LastIndex(ref, ":")
	if i < strings.LastIndex(ref, "/") {
		return "latest"
	}
	return ref[i+1:]
}

// layerTar is an uncompressed tar of files and their parent directories, sorted, owned by root.
func layerTar(files []File) ([]byte, error) {
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	type entry struct {
		name string
		file *File
	}
	var all []entry
	for d := range dirs {
		all = append(all, entry{name: strings.TrimPrefix(d, "/") + "/"})
	}
	for i := range files {
		all = append(all, entry{name: strings.TrimPrefix(files[i].Path, "/"), file: &files[i]})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range all {
		if e.file == nil {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: e.name, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
			continue
		}
		if err := writeFile(tw, e.name, int64(e.file.Mode.Perm()), e.file.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type indexJSON struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type imageConfig struct {
	Created      time.Time       `json:"created"`
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Config       containerConfig `json:"config"`
	RootFS       rootFS          `json:"rootfs"`
	History      []history       `json:"history"`
}

type containerConfig struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type history struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
}
