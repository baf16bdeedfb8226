// Package stack runs the qwen-operator demo on one machine, with no cluster and no GPU: a
// real kube-apiserver + etcd (the envtest binaries) with the CRDs installed, the operator
// (bin/manager), Redis, Prometheus, two llm-d-inference-sim processes standing in for the
// engine and fallback Deployments, the gateway process watching its ConfigMap through the
// API server, and an agent that stands in for the kubelet, kube-proxy and the DCGM exporter
// (it marks the Deployments available while their local processes answer, forwards the
// engine and fallback Services to the simulators, logging each request, and serves GPU
// metrics whose temperature is set over HTTP). Up applies demo variants of config/samples.
//
// Every process is started in its own session with its pid recorded under the state
// directory; Down stops exactly those processes. `make demo` and the end-to-end suite
// (test/e2e) both go through Up and Down. Everything listens on 127.0.0.1, except the
// simulator, which has no bind-address flag and listens on all IPv4 addresses of its port.
package stack
