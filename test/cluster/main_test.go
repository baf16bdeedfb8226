// Package cluster runs the product as pods on a real single-node Kubernetes started by the
// tests (internal/testutil/cluster): the images `make images` builds, imported into the
// node's containerd; the Helm chart installed with helm; the samples applied with kubectl;
// traffic through the gateway's ClusterIP Service. It shows what only pods can: that the
// images start under their securityContexts and probes, that RBAC works from inside the
// cluster with service-account tokens, that Services select their pods, and that the
// gateway follows its ConfigMap, the DegradationPlan and its breaker as pods come and go.
package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/qwenops/qwen-operator/internal/imagebuild"
	"github.com/qwenops/qwen-operator/internal/testutil/cluster"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// node is the running cluster; images are what was imported into it.
var (
	node   *cluster.Cluster
	images []imagebuild.Image
	// imagesBuilt is how long building the binaries and images took.
	imagesBuilt time.Duration
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard()) // the suite's controller-runtime client logs nothing
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := tools.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	begin := time.Now()
	if images, err = imagebuild.Build(ctx, root); err != nil {
		fmt.Fprintln(os.Stderr, "building the images:", err)
		return 1
	}
	imagesBuilt = time.Since(begin)
	corednsImage, _ := imagebuild.CoreDNSImage()
	var tars []string
	for _, im := range images {
		tars = append(tars, im.Tar)
	}
	node, err = cluster.Start(ctx, cluster.Options{
		Images: tars, PauseImage: imagebuild.PauseImage, CoreDNSImage: corednsImage, Log: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the node:", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "node logs are in %s\n", node.Dir+"/logs")
	}
	if err := node.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the node:", err)
		code = 1
	}
	// Stop must leave nothing: no process, mount, bridge, iptables chain or state file.
	if left := cluster.Leftovers(node.Dir); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "the node left behind:\n  %s\n", strings.Join(left, "\n  "))
		code = 1
	}
	return code
}
