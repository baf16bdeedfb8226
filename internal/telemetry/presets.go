package telemetry

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

// Target is the QwenService whose pods a query is scoped to. The Deployment names are the
// ones the operator renders (the caller fills them from internal/render's names); this
// package only turns them into pod regexes.
type Target struct {
	// Namespace of the QwenService and its pods.
	Namespace string
	// Service is the QwenService's name ($service).
	Service string
	// Engine is the name of the engine Deployment, whose pods $pods selects.
	Engine string
	// Gateway is the name of the gateway Deployment, whose pods $gatewayPods selects.
	Gateway string
	// EngineType picks the engine signals' metrics: sglang:* for SGLang, vllm:* otherwise
	// (VLLM, and the Simulator, which serves vLLM's names).
	EngineType v1alpha1.EngineType
}

// presets are the PromQL of every preset signal, before substitution. Variables:
//
//	$namespace    the target's namespace
//	$pods         a regex for the engine pods (of the Deployment Target.Engine)
//	$gatewayPods  a regex for the gateway pods (of the Deployment Target.Gateway)
//	$sel          (DCGM only) expanded twice by dcgm(): once for series labelled
//	              namespace/pod and once for exported_namespace/exported_pod, which is how
//	              DCGM's own pod labels end up when the exporter is scraped without
//	              honor_labels. Either labelling, or a mix, gives the same answer.
//
// The gateway signals read the gateway's metrics over 2m. Each query returns one number.
var presets = map[v1alpha1.Signal]string{
	// Hottest GPU, °C.
	v1alpha1.SignalGPUTemperature: dcgm(`max(DCGM_FI_DEV_GPU_TEMP{$sel})`),
	// Mean utilisation over the GPUs, %.
	v1alpha1.SignalGPUUtilization: dcgm(`avg(DCGM_FI_DEV_GPU_UTIL{$sel})`),
	// Fullest framebuffer, 0..1 (FB_USED and FB_FREE are MiB).
	v1alpha1.SignalGPUMemoryUsed: dcgm(`max(DCGM_FI_DEV_FB_USED{$sel} / (DCGM_FI_DEV_FB_USED{$sel} + DCGM_FI_DEV_FB_FREE{$sel}))`),
	// Gateway p95 latency over 2m, seconds; NaN (no data) without traffic.
	v1alpha1.SignalP95LatencySeconds: `histogram_quantile(0.95, sum by (le) (rate(qwen_gateway_request_duration_seconds_bucket{namespace="$namespace",pod=~"$gatewayPods"}[2m])))`,
	// Gateway 5xx share over 2m, 0..1: 0 when traffic has no 5xx, no data without traffic.
	// The gateway's own static replies (upstream="static") count as answers, never as errors,
	// whatever their status: a plan whose L4 reply is a 503 would otherwise hold itself at L4
	// on ErrorRate; leaving them out of the denominator too would leave no data at L4, which
	// holds the level just the same.
	v1alpha1.SignalErrorRate: `(sum(rate(qwen_gateway_requests_total{namespace="$namespace",pod=~"$gatewayPods",code=~"5..",upstream!="static"}[2m])) or vector(0))` +
		` / sum(rate(qwen_gateway_requests_total{namespace="$namespace",pod=~"$gatewayPods"}[2m]))`,
}

// enginePresets are the engine signals, by engine type, read from the engines' own metrics.
// A Simulator target reads vLLM's names (llm-d-inference-sim serves them).
var enginePresets = map[v1alpha1.EngineType]map[v1alpha1.Signal]string{
	v1alpha1.EngineVLLM: {
		// Fullest KV cache, 0..1; vLLM before 0.10 called it gpu_cache_usage_perc.
		v1alpha1.SignalKVCacheUsage: `max(vllm:kv_cache_usage_perc{namespace="$namespace",pod=~"$pods"} or vllm:gpu_cache_usage_perc{namespace="$namespace",pod=~"$pods"})`,
		// Requests waiting in all engines.
		v1alpha1.SignalQueueDepth: `sum(vllm:num_requests_waiting{namespace="$namespace",pod=~"$pods"})`,
		// Engines' p95 time to first token over 2m, seconds; no data without traffic.
		v1alpha1.SignalP95TimeToFirstTokenSeconds: `histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{namespace="$namespace",pod=~"$pods"}[2m])))`,
	},
	v1alpha1.EngineSGLang: {
		// Fullest KV cache (token pool), 0..1.
		v1alpha1.SignalKVCacheUsage: `max(sglang:token_usage{namespace="$namespace",pod=~"$pods"})`,
		// Requests waiting in all engines (every data-parallel rank).
		v1alpha1.SignalQueueDepth:                 `sum(sglang:num_queue_reqs{namespace="$namespace",pod=~"$pods"})`,
		v1alpha1.SignalP95TimeToFirstTokenSeconds: `histogram_quantile(0.95, sum by (le) (rate(sglang:time_to_first_token_seconds_bucket{namespace="$namespace",pod=~"$pods"}[2m])))`,
	},
}

// presetFor is the preset PromQL of signal for the target's engine type ("" when none).
func presetFor(s v1alpha1.Signal, engine v1alpha1.EngineType) string {
	if q, ok := presets[s]; ok {
		return q
	}
	if engine != v1alpha1.EngineSGLang {
		engine = v1alpha1.EngineVLLM
	}
	return enginePresets[engine][s]
}

// dcgm expands `agg(expr{$sel})` into agg over the series labelled either way.
func dcgm(q string) string {
	open := strings.IndexByte(q, '(')
	agg, inner := q[:open], q[open+1:len(q)-1]
	native := strings.ReplaceAll(inner, "$sel", `namespace="$namespace",pod=~"$pods"`)
	exported := strings.ReplaceAll(inner, "$sel", `exported_namespace="$namespace",exported_pod=~"$pods"`)
	return fmt.Sprintf("%s((%s) or (%s))", agg, native, exported)
}

// Expr returns the PromQL for a trigger scoped to the target: the preset for its signal (and,
// for an engine signal, the target's engine type), or
// its own query for signal PromQL, with the variables substituted. An unknown signal or a
// PromQL trigger without a query is ErrBadQuery.
func Expr(tr v1alpha1.Trigger, t Target) (string, error) {
	q := presetFor(tr.Signal, t.EngineType)
	if tr.Signal == v1alpha1.SignalPromQL {
		q = tr.Query
	}
	if q == "" {
		if tr.Signal == v1alpha1.SignalPromQL {
			return "", fmt.Errorf("%w: signal PromQL needs a query", ErrBadQuery)
		}
		return "", fmt.Errorf("%w: unknown signal %q", ErrBadQuery, tr.Signal)
	}
	return Substitute(q, t), nil
}

// Substitute replaces, in a PromQL query:
//
//	$namespace    with the target's namespace
//	$service      with the QwenService's name
//	$pods         with a regex matching the engine pods, escaped for a "double-quoted" string
//	$gatewayPods  the same for the gateway pods
//
// so that {namespace="$namespace",pod=~"$pods"} selects the target's engine pods.
func Substitute(query string, t Target) string {
	return strings.NewReplacer(
		"$namespace", t.Namespace,
		"$service", t.Service,
		"$pods", quoted(podRegex(t.Engine)),
		"$gatewayPods", quoted(podRegex(t.Gateway)),
	).Replace(query)
}

// podRegex matches the pods of a Deployment: names are <deployment>-<template hash>-<5
// characters>, or <deployment>-<hash and suffix run together> when Kubernetes shortens a long
// name. It does not match the pods of a Deployment whose name extends this one by a
// dash-separated part (their names have one more part). PromQL anchors regexes at both ends.
func podRegex(deployment string) string {
	return regexp.QuoteMeta(deployment) + `-[a-z0-9]+(-[a-z0-9]+)?`
}

// quoted escapes s for the inside of a PromQL double-quoted string.
func quoted(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
