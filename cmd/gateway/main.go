// Command gateway is the qwen-operator data plane: an OpenAI-compatible proxy in front of the
// inference engines with authentication, rate limits, degradation and circuit breakers.
//
//	gateway --config /etc/qwen-gateway/config.yaml
//	gateway --configmap ai/qwen3-gateway [--kubeconfig ~/.kube/config]
//
// The API port (the config's listen, :8080) serves the OpenAI endpoints and the health
// checks; /metrics is served only on the admin port (adminListen, :9090), which no Ingress or
// HTTPRoute routes.
//
// Outside the cluster (the local demo, hack/demo), --listen and --admin-listen override the
// config's addresses and --resolve HOST:PORT=ADDR:PORT (repeatable, like curl --resolve) connects to
// ADDR:PORT whenever an upstream URL names HOST:PORT, so the rendered cluster DNS names
// (http://qwen3-engine.ai.svc:8000) reach local engines:
//
//	gateway --configmap ai/qwen3-gateway --kubeconfig kubeconfig --listen 127.0.0.1:8080 \
//	  --resolve qwen3-engine.ai.svc:8000=127.0.0.1:8001
//
// The configuration (internal/gatewayconfig) is reloaded whenever it changes; an invalid one
// is rejected and the last good one keeps serving. On SIGTERM or SIGINT the gateway first
// answers /readyz with 503 while it keeps accepting requests for --shutdown-delay (the
// endpoints controller and kube-proxy need a few seconds to stop sending it traffic), then
// closes its listeners and lets in-flight requests and streams finish, up to
// --shutdown-timeout; it closes its Redis connection only after every request has released
// its concurrency slot and trued up its tokens. The pod's terminationGracePeriodSeconds must
// cover both (the operator renders it so).
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
