# versions.sh pins every tool the project builds or installs; setup.sh and env.sh read it.
K8S_VERSION=1.37.2
K8S_STAGING=0.37.2
ETCD_VERSION=3.6.16
SIM_VERSION=0.10.2
CONTROLLER_TOOLS_VERSION=0.23.0
HELM_VERSION=3.22.0
GATEWAY_API_VERSION=1.6.3
COREDNS_VERSION=1.15.0
# Modules whose CRDs the tests install to check rendered objects against the real schemas
# (ServiceMonitor, PodMonitor; Envoy Gateway's BackendTrafficPolicy): fetched by setup.sh.
PROMETHEUS_OPERATOR_VERSION=0.85.0
ENVOY_GATEWAY_VERSION=1.9.1
QWEN_CACHE=${QWEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qwen-operator}
