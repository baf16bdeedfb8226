package stack

import (
	"github.com/qwenops/qwen-operator/internal/testutil/proc"

	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RunControlPlane is the control plane component (`qwen-demo controlplane`): it starts
// kube-apiserver and etcd from the envtest binaries on the state's API server port, with
// certificates and etcd data under the state directory, installs the project's CRDs, records
// the pids of both programs, writes the admin kubeconfig and serves until SIGTERM or SIGINT.
func RunControlPlane(dir string) error {
	s, err := Load(dir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	env := &envtest.Environment{
		BinaryAssetsDirectory:    s.Tools.Assets,
		CRDDirectoryPaths:        []string{filepath.Join(s.Root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: s.Path("etcd")}
	api := env.ControlPlane.GetAPIServer()
	api.CertDir = s.Path("apiserver")
	api.SecureServing.ListenAddr = envtest.ListenAddr{Address: "127.0.0.1", Port: strconv.Itoa(s.Ports.APIServer)}
	for _, d := range []string{s.Path("etcd"), s.Path("apiserver")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	_, startErr := env.Start()
	// Record the children first, so that Down finds them even when the CRD install failed.
	for name, pid := range proc.ChildPids(controlPlaneChildren...) {
		if err := proc.Record(s.Path("pids", name+".pid"), pid); err != nil {
			fmt.Fprintln(os.Stderr, "recording pid:", err)
		}
	}
	if startErr != nil {
		_ = env.Stop()
		return fmt.Errorf("starting kube-apiserver + etcd: %w", startErr)
	}
	if err := proc.WriteFileAtomic(s.Kubeconfig(), env.KubeConfig, 0o600); err != nil {
		_ = env.Stop()
		return err
	}
	fmt.Fprintf(os.Stderr, "control plane serving at https://127.0.0.1:%d; kubeconfig %s\n", s.Ports.APIServer, s.Kubeconfig())
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping kube-apiserver and etcd")
	err = env.Stop()
	for _, name := range controlPlaneChildren {
		_ = os.Remove(s.Path("pids", name+".pid"))
	}
	return err
}
