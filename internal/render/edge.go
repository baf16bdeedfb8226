package render

import (
	"sort"
	"strconv"
	"strings"

	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// The ingress-nginx rate-limit annotations the operator writes (docs/qwenservice.md lists every
// annotation it sets). limit-allowlist is the current name of what older ingress-nginx
// releases called limit-whitelist.
const (
	AnnotationLimitRPM             = "nginx.ingress.kubernetes.io/limit-rpm"
	AnnotationLimitBurstMultiplier = "nginx.ingress.kubernetes.io/limit-burst-multiplier"
	AnnotationLimitConnections     = "nginx.ingress.kubernetes.io/limit-connections"
	AnnotationLimitAllowlist       = "nginx.ingress.kubernetes.io/limit-allowlist"
)

// EdgeLimits are the coarse per-client-IP limits written to the edge (ingress-nginx
// annotations, an Envoy Gateway BackendTrafficPolicy). The gateway enforces the exact limits;
// the edge only sheds what the gateway would refuse anyway, so it is never stricter than
// the gateway for any client. Zero fields mean no edge limit.
type EdgeLimits struct {
	// RequestsPerMinute per client IP.
	RequestsPerMinute int64
	// BurstMultiplier is ingress-nginx's burst as a multiple of the per-minute rate (>= 1).
	BurstMultiplier int64
	// Connections is the number of concurrent connections per client IP.
	Connections int64
	// Exempt are the CIDRs the edge leaves alone: a ClientIP policy's override tiers, whose
	// own limits the gateway enforces.
	Exempt []string
	// CeilingRequestsPerMinute is the most any single client may send per minute (the largest
	// of the base and the override tiers' rates): the rate of an edge that cannot exempt
	// addresses, such as an Envoy Gateway local rate limit.
	CeilingRequestsPerMinute int64
}

// Edge derives the edge limits of an enforced policy (see Enforced):
//   - none, or Shadow mode (which never rejects): none;
//   - key ClientIP: the base limits, with the override tiers' addresses exempt
//     (ingress-nginx limit-allowlist);
//   - key APIKey or Header: the edge cannot see the key, so an IP gets the most any single
//     key may use (the largest of the base limits and every tier's limits).
//
// The burst multiplier is ceil(burst / rpm), at least 1, with burst defaulting to rpm.
func Edge(e *v1alpha1.EffectivePolicy) EdgeLimits {
	if e == nil || e.Mode == v1alpha1.ModeShadow {
		return EdgeLimits{}
	}
	rpm, burst, conns := limitTriple(e.Limits)
	// The most any one key may use: the base limits or a tier's, whichever is larger.
	maxRPM, maxBurst, maxConns := rpm, burst, conns
	for _, o := range e.Overrides {
		orpm, oburst, oconns := limitTriple(o.Limits)
		maxRPM, maxBurst, maxConns = max(maxRPM, orpm), max(maxBurst, oburst), max(maxConns, oconns)
	}
	edge := EdgeLimits{CeilingRequestsPerMinute: maxRPM}
	if e.Key.Source == v1alpha1.KeyClientIP || e.Key.Source == "" {
		for _, o := range e.Overrides {
			for _, k := range o.Keys {
				if pr, err := gatewayconfig.ParsePrefix(k); err == nil {
					edge.Exempt = append(edge.Exempt, pr.String())
				}
			}
		}
		sort.Strings(edge.Exempt)
		edge.Exempt = dedupe(edge.Exempt)
	} else {
		rpm, burst, conns = maxRPM, maxBurst, maxConns
	}
	edge.RequestsPerMinute, edge.Connections = rpm, conns
	if rpm > 0 {
		edge.BurstMultiplier = max(1, (burst+rpm-1)/rpm)
	}
	return edge
}

// limitTriple is (rpm, burst, concurrency) of l, burst defaulting to rpm.
func limitTriple(l v1alpha1.LimitSet) (rpm, burst, conns int64) {
	rpm = int64(ptr.Deref(l.RequestsPerMinute, 0))
	burst = int64(ptr.Deref(l.Burst, 0))
	if burst == 0 {
		burst = rpm
	}
	return rpm, burst, int64(ptr.Deref(l.MaxConcurrentRequests, 0))
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// NginxAnnotations are the ingress-nginx limit annotations of e; empty when e limits nothing.
func (e EdgeLimits) NginxAnnotations() map[string]string {
	a := map[string]string{}
	if e.RequestsPerMinute > 0 {
		a[AnnotationLimitRPM] = strconv.FormatInt(e.RequestsPerMinute, 10)
		a[AnnotationLimitBurstMultiplier] = strconv.FormatInt(e.BurstMultiplier, 10)
	}
	if e.Connections > 0 {
		a[AnnotationLimitConnections] = strconv.FormatInt(e.Connections, 10)
	}
	if len(a) > 0 && len(e.Exempt) > 0 {
		a[AnnotationLimitAllowlist] = strings.Join(e.Exempt, ",")
	}
	return a
}
