// Command dcgm-exporter stands in for NVIDIA's DCGM exporter where there is no GPU (the
// real-node tests): it serves one simulated GPU's DCGM metrics, mapped to a pod, on /metrics
// and takes new values with POST /gpu (internal/testutil/dcgm).
//
//	dcgm-exporter --listen :9400 --namespace ai --pod qwen3-engine-0
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/dcgm"
)

func main() {
	listen := flag.String("listen", ":9400", "address to serve /metrics, /gpu and /healthz on")
	namespace := flag.String("namespace", "", "namespace label of the GPU's pod")
	pod := flag.String("pod", "", "pod label of the GPU's pod (POST /gpu pod=... changes it)")
	flag.Parse()
	srv := &http.Server{Addr: *listen, Handler: dcgm.New(*namespace, *pod), ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "dcgm-exporter:", err)
		os.Exit(1)
	}
}
