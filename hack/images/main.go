// Command images builds the project's binaries and container images offline
// (internal/imagebuild): `make build` runs it with -binaries-only, `make images` without.
//
//	go run ./hack/images [-binaries-only] [-version 0.1.0]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/qwenops/qwen-operator/internal/imagebuild"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

func main() {
	binariesOnly := flag.Bool("binaries-only", false, "build bin/ only, no images")
	version := flag.String("version", "", "tag of the manager and gateway images (default: internal/buildinfo.Version, the chart's appVersion)")
	flag.Parse()
	if err := run(*binariesOnly, *version); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(binariesOnly bool, version string) error {
	root, err := tools.RepoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(root, "bin")
	if err := imagebuild.BuildBinaries(context.Background(), root, bin, version); err != nil {
		return err
	}
	if binariesOnly {
		fmt.Printf("built %v into %s\n", imagebuild.Programs, bin)
		return nil
	}
	specs, err := imagebuild.Specs(bin, version)
	if err != nil {
		return err
	}
	images, err := imagebuild.Write(specs, filepath.Join(bin, "images"))
	if err != nil {
		return err
	}
	for _, im := range images {
		fmt.Printf("%-55s %s  %s\n", im.Name, im.Digest[:19], im.Tar)
	}
	fmt.Println("load them into a cluster's containerd with: ctr -n k8s.io images import FILE (kind: kind load image-archive FILE)")
	return nil
}
