#!/usr/bin/env bash
# setup.sh installs and builds everything the tests and the demo need:
#   Debian: redis-server, redis-sentinel, prometheus, nginx, containerd, runc, CNI plugins, iptables
#   Go tools: controller-gen, helm
#   Built from the Go module proxy: the kube binaries (kube-apiserver, kube-controller-manager,
#   kube-scheduler, kubelet, kube-proxy, kubectl), etcd, llm-d-inference-sim, CoreDNS
# Built tools are cached outside the repo, keyed by version, so a second run takes seconds.
# It prints where everything is; hack/env.sh exports the same paths for make and the tests.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.sh
source "$here/versions.sh"

log() { printf "==> [%4ds] %s\n" "$SECONDS" "$*" >&2; }

# build_module DIR: DIR/src holds a throwaway go.mod + main.go; builds listed packages into DIR.
tidy_in() { (cd "$1" && GOFLAGS=-mod=mod go mod tidy >/dev/null); }

install_debian() {
  # command -> Debian package; the real node needs containerd, runc, the CNI plugins and iptables,
  # the benchmarks nginx, the Redis topology tests redis-sentinel.
  local -A pkgs=(
    [redis-server]=redis-server [redis-sentinel]=redis-sentinel [prometheus]=prometheus [curl]=curl
    [containerd]=containerd [runc]=runc [/usr/lib/cni/bridge]=containernetworking-plugins
    [iptables]=iptables [nginx]=nginx [ip]=iproute2
  )
  local missing=() c
  for c in "${!pkgs[@]}"; do
    if [[ $c == /* ]]; then [ -x "$c" ] || missing+=("${pkgs[$c]}"); else command -v "$c" >/dev/null || missing+=("${pkgs[$c]}"); fi
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "apt-get install ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start system services where an init system runs; the tests start their own.
  for svc in redis-server redis-sentinel prometheus nginx containerd; do $sudo service "$svc" stop >/dev/null 2>&1 || true; done
}

go_install() { # name version package
  local dir="$QWEN_CACHE/$1-$2"
  [ -x "$dir/$1" ] && return
  log "go install $3@$2"
  GOBIN="$dir" go install "$3@$2"
}

build_kube() {
  # One throwaway module, one `go build -o DIR/` call: the six mains share every package compile.
  local dir="$QWEN_CACHE/kubernetes-$K8S_VERSION" bins=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl)
  local b missing=0
  for b in "${bins[@]}"; do [ -x "$dir/$b" ] || missing=1; done
  [ $missing -eq 0 ] && return
  log "building ${bins[*]} $K8S_VERSION (cold: ~10 min on 2 cores)"
  mkdir -p "$dir/src"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  {
    echo "module qwenops.local/kubebuild"
    echo "go 1.26"
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*#\t\1 => \1 v'"$K8S_STAGING"'#p' "$gomod"
    echo ")"
  } >"$dir/src/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for b in "${bins[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
    printf ')\n'
  } >"$dir/src/tools.go"
  tidy_in "$dir/src"
  # Stamp the version; without it every binary reports v0.0.0-master+$Format:%H$.
  local ld="-s" pkg pkgs=()
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*} -X $pkg.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
    ld="$ld -X $pkg.gitTreeState=clean -X $pkg.gitCommit=module-proxy-v$K8S_VERSION -X $pkg.buildDate=2026-01-01T00:00:00Z"
  done
  for b in "${bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  (cd "$dir/src" && CGO_ENABLED=0 go build -trimpath -ldflags="$ld" -o "$dir/" "${pkgs[@]}")
}

build_etcd() {
  local dir="$QWEN_CACHE/etcd-$ETCD_VERSION"
  [ -x "$dir/etcd" ] && return
  log "building etcd $ETCD_VERSION (cold: ~1 min)"
  mkdir -p "$dir/src"
  printf 'module qwenops.local/etcdbuild\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$ETCD_VERSION" >"$dir/src/go.mod"
  cat >"$dir/src/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  tidy_in "$dir/src"
  (cd "$dir/src" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$dir/etcd" .)
}

build_sim() {
  local dir="$QWEN_CACHE/llm-d-inference-sim-$SIM_VERSION"
  [ -x "$dir/llm-d-inference-sim" ] && return
  log "building llm-d-inference-sim $SIM_VERSION (cold: ~4 min)"
  mkdir -p "$dir/src"
  printf 'module qwenops.local/simbuild\n\ngo 1.26\n\nrequire github.com/llm-d/llm-d-inference-sim v%s\n' "$SIM_VERSION" >"$dir/src/go.mod"
  cat >"$dir/src/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim"
GO
  tidy_in "$dir/src"
  (cd "$dir/src" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$dir/llm-d-inference-sim" github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim)
}

build_coredns() {
  # CoreDNS with only the plugins cluster DNS needs (its main with a short plugin list, the
  # way CoreDNS's plugin.cfg is meant to be cut): the cluster tests' DNS, never forwarding.
  local dir="$QWEN_CACHE/coredns-$COREDNS_VERSION"
  [ -x "$dir/coredns" ] && return
  log "building CoreDNS $COREDNS_VERSION (cold: ~3 min)"
  mkdir -p "$dir/src"
  printf 'module qwenops.local/corednsbuild\n\ngo 1.26\n\nrequire github.com/coredns/coredns v%s\n' "$COREDNS_VERSION" >"$dir/src/go.mod"
  cat >"$dir/src/main.go" <<'GO'
package main

import (
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	"github.com/coredns/coredns/coremain"
)

func main() { coremain.Run() }
GO
  tidy_in "$dir/src"
  (cd "$dir/src" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$dir/coredns" .)
}

link_assets() {
  # envtest wants kube-apiserver, etcd and kubectl in one directory.
  local assets="$QWEN_CACHE/envtest-$K8S_VERSION-etcd-$ETCD_VERSION"
  mkdir -p "$assets"
  ln -sf "$QWEN_CACHE/kubernetes-$K8S_VERSION/kube-apiserver" "$assets/kube-apiserver"
  ln -sf "$QWEN_CACHE/kubernetes-$K8S_VERSION/kubectl" "$assets/kubectl"
  ln -sf "$QWEN_CACHE/etcd-$ETCD_VERSION/etcd" "$assets/etcd"
}

main() {
  mkdir -p "$QWEN_CACHE"
  install_debian
  go_install controller-gen "v$CONTROLLER_TOOLS_VERSION" sigs.k8s.io/controller-tools/cmd/controller-gen
  go_install helm "v$HELM_VERSION" helm.sh/helm/v3/cmd/helm
  build_etcd
  build_kube
  build_sim
  build_coredns
  link_assets
  (cd "$here/.." && go mod download)
  # The CRDs the tests validate rendered objects against (tools.CRDFile finds them in the module cache).
  go mod download "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION" \
    "github.com/envoyproxy/gateway@v$ENVOY_GATEWAY_VERSION"
  # shellcheck source=hack/env.sh
  source "$here/env.sh"
  cat <<MSG
qwen-operator toolchain ready (cache: $QWEN_CACHE)
  KUBEBUILDER_ASSETS   $KUBEBUILDER_ASSETS  (kube-apiserver $K8S_VERSION, etcd $ETCD_VERSION, kubectl)
  llm-d-inference-sim  $QWEN_SIM
  controller-gen       $CONTROLLER_GEN
  helm                 $HELM
  kube binaries        $QWEN_KUBE_BIN  (kubelet, kube-proxy, kube-controller-manager, kube-scheduler)
  coredns              $QWEN_COREDNS
  redis-server         $(command -v redis-server)
  prometheus           $(command -v prometheus)
(setup took ${SECONDS}s)
MSG
}

main "$@"
