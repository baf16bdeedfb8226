// Package imagebuild builds the project's container images offline, from static binaries built
// on this machine, with no registry pull: the manager and the gateway (the names, entrypoints
// and user the Dockerfile gives the published images) and the test-only images the real-node
// tests run (llm-d-inference-sim for the Simulator engine, pause, CoreDNS and the stand-in DCGM
// exporter). `make build` and `make images` (hack/images) and the cluster tests call it.
package imagebuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/qwenops/qwen-operator/internal/buildinfo"
	"github.com/qwenops/qwen-operator/internal/ociimage"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// Names of the test-only images. The simulator's is the upstream image's, so the chart's
// default --simulator-image finds it.
const (
	PauseImage = "qwenops.local/pause:1"
	DCGMImage  = "qwenops.local/dcgm-exporter:1"
)

// SimulatorImage is the llm-d-inference-sim image of the pinned version.
func SimulatorImage() (string, error) {
	v, err := tools.Versions()
	return "ghcr.io/llm-d/llm-d-inference-sim:v" + v["SIM_VERSION"], err
}

// CoreDNSImage is the locally built CoreDNS of the pinned version.
func CoreDNSImage() (string, error) {
	v, err := tools.Versions()
	return "qwenops.local/coredns:v" + v["COREDNS_VERSION"], err
}

// Programs are the project's mains `make build` compiles into bin/, statically.
var Programs = []string{"./cmd/manager", "./cmd/gateway", "./hack/pause", "./hack/dcgm-exporter"}

// caBundle is the build machine's CA bundle, copied into every image.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// BuildBinaries compiles Programs into bin (static: CGO_ENABLED=0, -trimpath), stamping
// buildinfo.Version with version when it is not empty.
func BuildBinaries(ctx context.Context, root, bin, version string) error {
	ldflags := "-s -w"
	if version != "" {
		ldflags += " -X github.com/qwenops/qwen-operator/internal/buildinfo.Version=" + version
	}
	args := append([]string{"build", "-trimpath", "-ldflags", ldflags, "-o", bin + string(filepath.Separator)}, Programs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Spec is one image: a program and its name.
type Spec struct {
	// File is the image's tarball name in the output directory, e.g. gateway.tar.
	File string
	Name string
	// Binary is the program's path on this machine; it becomes /<Entrypoint[0]>.
	Binary     string
	Entrypoint string
	Title      string
}

// Specs are every image, from the binaries in bin (see BuildBinaries) and the simulator and
// CoreDNS hack/setup.sh built. version tags the manager and gateway images.
func Specs(bin, version string) ([]Spec, error) {
	if version == "" {
		version = buildinfo.Version
	}
	sim, err := tools.Lookup("llm-d-inference-sim")
	if err != nil {
		return nil, err
	}
	coredns, err := tools.Lookup("coredns")
	if err != nil {
		return nil, err
	}
	simImage, err := SimulatorImage()
	if err != nil {
		return nil, err
	}
	corednsImage, err := CoreDNSImage()
	if err != nil {
		return nil, err
	}
	return []Spec{
		{File: "manager.tar", Name: buildinfo.ManagerRepository + ":" + version, Binary: filepath.Join(bin, "manager"), Entrypoint: "/manager", Title: "qwen-operator manager"},
		{File: "gateway.tar", Name: buildinfo.GatewayRepository + ":" + version, Binary: filepath.Join(bin, "gateway"), Entrypoint: "/gateway", Title: "qwen-operator gateway"},
		{File: "simulator.tar", Name: simImage, Binary: sim, Entrypoint: "/llm-d-inference-sim", Title: "llm-d-inference-sim (test image)"},
		{File: "pause.tar", Name: PauseImage, Binary: filepath.Join(bin, "pause"), Entrypoint: "/pause", Title: "pause (test image)"},
		{File: "coredns.tar", Name: corednsImage, Binary: coredns, Entrypoint: "/coredns", Title: "CoreDNS (test image)"},
		{File: "dcgm-exporter.tar", Name: DCGMImage, Binary: filepath.Join(bin, "dcgm-exporter"), Entrypoint: "/dcgm-exporter", Title: "stand-in DCGM exporter (test image)"},
	}, nil
}

// Image is a written image tarball.
type Image struct {
	Name, Tar, Digest string
}

// Write writes each spec's image into out as an OCI tarball: the static binary, the build
// machine's CA bundle, and passwd/group entries for root and nonroot (65532); the image runs
// as 65532:65532. A tarball whose content would not change is left as it is.
func Write(specs []Spec, out string) ([]Image, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, fmt.Errorf("reading the CA bundle (apt-get install -y ca-certificates): %w", err)
	}
	uid := buildinfo.NonRootUID
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, uid)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid)
	var images []Image
	for _, s := range specs {
		bin, err := os.ReadFile(s.Binary)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (build it with: make build, or make setup for the simulator and CoreDNS)", s.Name, err)
		}
		var buf bytes.Buffer
		d, err := ociimage.Write(&buf, ociimage.Image{
			Name: s.Name,
			Files: []ociimage.File{
				{Path: s.Entrypoint, Mode: 0o755, Data: bin},
				{Path: "/etc/passwd", Mode: 0o644, Data: []byte(passwd)},
				{Path: "/etc/group", Mode: 0o644, Data: []byte(group)},
				{Path: caBundle, Mode: 0o644, Data: ca},
			},
			Entrypoint: []string{s.Entrypoint},
			User:       fmt.Sprintf("%d:%d", uid, uid),
			Env:        []string{"PATH=/", "SSL_CERT_FILE=" + caBundle},
			Labels: map[string]string{
				"org.opencontainers.image.title":  s.Title,
				"org.opencontainers.image.source": "https://github.com/qwenops/qwen-operator",
			},
		})
		if err != nil {
			return nil, err
		}
		path := filepath.Join(out, s.File)
		if old, err := os.ReadFile(path); err != nil || !bytes.Equal(old, buf.Bytes()) {
			if err := os.WriteFile(path+".tmp", buf.Bytes(), 0o644); err != nil {
				return nil, err
			}
			if err := os.Rename(path+".tmp", path); err != nil {
				return nil, err
			}
		}
		images = append(images, Image{Name: s.Name, Tar: path, Digest: d.Digest})
	}
	return images, nil
}

// Build compiles the binaries into root/bin and writes every image into root/bin/images.
func Build(ctx context.Context, root string) ([]Image, error) {
	bin := filepath.Join(root, "bin")
	if err := BuildBinaries(ctx, root, bin, ""); err != nil {
		return nil, err
	}
	specs, err := Specs(bin, "")
	if err != nil {
		return nil, err
	}
	return Write(specs, filepath.Join(bin, "images"))
}
