# env.sh exports the paths of the tools setup.sh built; source it, or `eval "$(hack/env.sh)"`.
_qwen_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/versions.sh
source "$_qwen_here/versions.sh"
export QWEN_CACHE
export KUBEBUILDER_ASSETS="$QWEN_CACHE/envtest-$K8S_VERSION-etcd-$ETCD_VERSION"
export QWEN_SIM="$QWEN_CACHE/llm-d-inference-sim-$SIM_VERSION/llm-d-inference-sim"
export CONTROLLER_GEN="$QWEN_CACHE/controller-gen-v$CONTROLLER_TOOLS_VERSION/controller-gen"
export HELM="$QWEN_CACHE/helm-v$HELM_VERSION/helm"
export QWEN_KUBE_BIN="$QWEN_CACHE/kubernetes-$K8S_VERSION"   # kubelet, kube-proxy, kube-controller-manager, kube-scheduler
export QWEN_COREDNS="$QWEN_CACHE/coredns-$COREDNS_VERSION/coredns"
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  for v in QWEN_CACHE KUBEBUILDER_ASSETS QWEN_SIM CONTROLLER_GEN HELM QWEN_KUBE_BIN QWEN_COREDNS; do printf 'export %s=%q\n' "$v" "${!v}"; done
fi
