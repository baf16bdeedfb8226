// Command gateway is the qwen-operator data plane: an OpenAI-compatible proxy in front of the
// inference engines with authentication, rate limits, degradation and circuit breakers.
//
//	gateway --config /etc/qwen-gateway/config.yaml
//	gateway --configmap ai/qwen3-gateway [--kubeconfig ~/.kube/config]
//
// Outside the cluster (the local demo, hack/demo), --listen overrides the config's listen
// address and --resolve HOST:PORT=ADDR:PORT (repeatable, like curl --resolve) connects to
// ADDR:PORT whenever an upstream URL names HOST:PORT, so the rendered cluster DNS names
// (http://qwen3-engine.ai.svc:8000) reach local engines:
//
//	gateway --configmap ai/qwen3-gateway --kubeconfig kubeconfig --listen 127.0.0.1:8080 \
//	  --resolve qwen3-engine.ai.svc:8000=127.0.0.1:8001
//
// The configuration (internal/gatewayconfig) is reloaded whenever it changes; an invalid one
// is rejected and the last good one keeps serving. On SIGTERM or SIGINT the gateway stops
// accepting connections and lets in-flight requests and streams finish, up to
// --shutdown-timeout.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, hooks{}); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}
