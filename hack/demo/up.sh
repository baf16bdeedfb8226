#!/usr/bin/env bash
# up.sh (make demo) runs qwen-operator on this machine with no cluster and no GPU: a real
# kube-apiserver + etcd, the operator, Redis, Prometheus, two llm-d-inference-sim processes
# standing in for the engine and fallback Deployments, and the gateway; then it applies the
# samples and prints the endpoint, the kubeconfig and commands to try. Needs `make setup`.
# State, logs and pid files go to ${QWEN_DEMO_DIR:-/tmp/qwen-demo}; make demo-down stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=hack/env.sh
source hack/env.sh
echo "==> go build -o bin/ ./cmd/manager ./cmd/gateway ./hack/demo/qwen-demo" >&2
go build -o bin/ ./cmd/manager ./cmd/gateway ./hack/demo/qwen-demo
exec bin/qwen-demo up "$@"
