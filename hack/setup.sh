#!/usr/bin/env bash
# setup.sh installs and builds everything the tests and the demo need:
#   Debian: redis-server, prometheus
#   Go tools: controller-gen, helm
#   Built from the Go module proxy: kube-apiserver, kubectl, etcd (envtest assets), llm-d-inference-sim
# Built tools are cached outside the repo, keyed by version, so a second run takes seconds.
# It prints where everything is; hack/env.sh exports the same paths for make and the tests.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.sh
source "$here/versions.sh"

log() { printf '==> %s\n' "$*" >&2; }

# build_module DIR: DIR/src holds a throwaway go.mod + main.go; builds listed packages into DIR.
tidy_in() { (cd "$1" && GOFLAGS=-mod=mod go mod tidy >/dev/null); }

install_debian() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v curl >/dev/null || missing+=(curl)
  [ ${#missing[@]} -eq 0 ] && return
  log "apt-get install ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start system services where an init system runs; the tests start their own.
  for svc in redis-server prometheus; do $sudo service "$svc" stop >/dev/null 2>&1 || true; done
}

go_install() { # name version package
  local dir="$QWEN_CACHE/$1-$2"
  [ -x "$dir/$1" ] && return
  log "go install $3@$2"
  GOBIN="$dir" go install "$3@$2"
}

build_kube() {
  local dir="$QWEN_CACHE/kubernetes-$K8S_VERSION"
  [ -x "$dir/kube-apiserver" ] && [ -x "$dir/kubectl" ] && return
  log "building kube-apiserver and kubectl $K8S_VERSION (cold: ~8 min)"
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
  cat >"$dir/src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  tidy_in "$dir/src"
  (cd "$dir/src" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$dir/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver \
    && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$dir/kubectl" k8s.io/kubernetes/cmd/kubectl)
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
  log "building llm-d-inference-sim $SIM_VERSION (cold: ~5 min)"
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
  link_assets
  (cd "$here/.." && go mod download)
  # shellcheck source=hack/env.sh
  source "$here/env.sh"
  cat <<MSG
qwen-operator toolchain ready (cache: $QWEN_CACHE)
  KUBEBUILDER_ASSETS   $KUBEBUILDER_ASSETS  (kube-apiserver $K8S_VERSION, etcd $ETCD_VERSION, kubectl)
  llm-d-inference-sim  $QWEN_SIM
  controller-gen       $CONTROLLER_GEN
  helm                 $HELM
  redis-server         $(command -v redis-server)
  prometheus           $(command -v prometheus)
MSG
}

main "$@"
