// Command gateway is the qwen-operator data plane: an OpenAI-compatible proxy in front of the
// inference engines with authentication, rate limits, degradation and circuit breakers.
//
//	gateway --config /etc/qwen-gateway/config.yaml
//	gateway --configmap ai/qwen3-gateway [--kubeconfig ~/.kube/config]
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
