#!/usr/bin/env bash
# test.sh runs every test of the project. It finds the tools hack/setup.sh built (through
# hack/env.sh) and fails with the install command when one is missing; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/env.sh
source hack/env.sh

missing=()
for f in "$KUBEBUILDER_ASSETS/kube-apiserver" "$KUBEBUILDER_ASSETS/etcd" "$KUBEBUILDER_ASSETS/kubectl" "$QWEN_SIM" "$CONTROLLER_GEN" "$HELM" \
  "$QWEN_KUBE_BIN/kubelet" "$QWEN_KUBE_BIN/kube-proxy" "$QWEN_KUBE_BIN/kube-controller-manager" "$QWEN_KUBE_BIN/kube-scheduler" "$QWEN_COREDNS" \
  /usr/lib/cni/bridge; do
  [ -x "$f" ] || missing+=("$f")
done
export PATH="$PATH:/usr/sbin:/sbin"
for c in redis-server redis-sentinel redis-cli prometheus nginx containerd ctr runc iptables ip; do
  command -v "$c" >/dev/null || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
  printf 'missing: %s\ninstall everything with: make setup\n' "${missing[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "make test runs the product as pods on a real node (test/cluster): it needs root for bridges, iptables, containerd and the kubelet" >&2
  exit 1
fi

unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  printf 'gofmt would change:\n%s\n' "$unformatted" >&2
  exit 1
fi
go vet ./...
# -race on every package: the gateway and the limiters are concurrent by nature.
go test -race -count=1 -timeout 20m "$@" ./...

# Every fuzz target, for a bounded time each (QWEN_FUZZTIME, default 10s), so CI keeps
# exploring what the seeds in testdata/fuzz/ started; an input that fails is written to the
# package's testdata/fuzz/<target>/ and fails the run.
fuzztime=${QWEN_FUZZTIME:-10s}
git grep -h --full-name -E '^func Fuzz[A-Za-z0-9_]*\(' -- '*_test.go' >/dev/null || { echo "no fuzz targets found" >&2; exit 1; }
git grep -E '^func Fuzz[A-Za-z0-9_]*\(' -- '*_test.go' | sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' |
  while read -r dir target; do
    echo "fuzzing ${target} in ./${dir} for ${fuzztime}"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="${fuzztime}" "./${dir}"
  done
