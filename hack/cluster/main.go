// Command cluster starts and stops the real single-node Kubernetes of the tests
// (internal/testutil/cluster) for people: `make cluster` builds the images, starts the node
// with them imported and prints the kubeconfig; `make cluster-down` stops it and removes what
// it created. It needs root and `make setup`.
//
//	go run ./hack/cluster up|down
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/qwenops/qwen-operator/internal/imagebuild"
	"github.com/qwenops/qwen-operator/internal/testutil/cluster"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: cluster up|down   (state in $QWEN_CLUSTER_DIR, default "+cluster.DefaultDir()+")")
		os.Exit(2)
	}
	var err error
	if os.Args[1] == "up" {
		err = up()
	} else {
		err = cluster.Down(cluster.DefaultDir())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func up() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	root, err := tools.RepoRoot()
	if err != nil {
		return err
	}
	images, err := imagebuild.Build(ctx, root)
	if err != nil {
		return err
	}
	coredns, err := imagebuild.CoreDNSImage()
	if err != nil {
		return err
	}
	var tars []string
	for _, im := range images {
		tars = append(tars, im.Tar)
		fmt.Fprintf(os.Stderr, "image %s\n", im.Name)
	}
	c, err := cluster.Start(ctx, cluster.Options{Images: tars, PauseImage: imagebuild.PauseImage, CoreDNSImage: coredns, Log: os.Stderr})
	if err != nil {
		return err
	}
	fmt.Printf(`
A one-node cluster runs (logs in %[1]s). Its images are the ones make images built.

  export KUBECONFIG=%[2]s
  alias kubectl=%[3]s
  kubectl get nodes
  helm install qwen-operator charts/qwen-operator -n qwen-operator-system --create-namespace
  kubectl create namespace ai
  # the samples with the Simulator engine: set spec.engine.type: Simulator and small requests

Stop it with: make cluster-down
`, filepath.Join(c.Dir, "logs"), c.Kubeconfig(), c.Kubectl())
	return nil
}
