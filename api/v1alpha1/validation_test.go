package v1alpha1_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Minimal valid manifests; each invalid case below changes one thing.
const (
	minimalQwenService = `
apiVersion: serving.qwenops.io/v1alpha1
kind: QwenService
metadata: {name: qs}
spec:
  model: {name: Qwen/Qwen3-1.7B}
`
	minimalRateLimitPolicy = `
apiVersion: serving.qwenops.io/v1alpha1
kind: RateLimitPolicy
metadata: {name: rlp}
spec:
  targetRef: {name: qwen3}
  limits: {requestsPerMinute: 30}
`
	minimalDegradationPlan = `
apiVersion: serving.qwenops.io/v1alpha1
kind: DegradationPlan
metadata: {name: dp}
spec:
  targetRef: {name: qwen3}
  levels:
  - level: 1
    when: [{signal: GPUTemperature, above: "80"}]
`
)

// invalidCase is a minimal manifest with one field set to a value the API must refuse.
type invalidCase struct {
	name string
	base string
	// set maps dotted paths (list indexes as numbers) to values; nil deletes the field.
	set map[string]any
	// want are substrings of the API server's error: the field path and what is allowed.
	want []string
}

func invalidCases() []invalidCase {
	qs, rlp, dp := minimalQwenService, minimalRateLimitPolicy, minimalDegradationPlan
	return []invalidCase{
		// QwenService
		{"qs model name missing", qs, map[string]any{"spec.model.name": nil}, []string{"spec.model.name", "Required"}},
		{"qs model name with spaces", qs, map[string]any{"spec.model.name": "Qwen 3"}, []string{"spec.model.name", "should match"}},
		{"qs servedName with spaces", qs, map[string]any{"spec.model.servedName": "my model"}, []string{"spec.model.servedName"}},
		{"qs maxModelLen too small", qs, map[string]any{"spec.model.maxModelLen": int64(10)}, []string{"spec.model.maxModelLen", "greater than or equal to 128"}},
		{"qs unknown engine", qs, map[string]any{"spec.engine.type": "TensorRT"}, []string{"spec.engine.type", "Unsupported value", `"VLLM"`}},
		{"qs port zero", qs, map[string]any{"spec.engine.port": int64(0)}, []string{"spec.engine.port", "greater than or equal to 1"}},
		{"qs port too large", qs, map[string]any{"spec.engine.port": int64(70000)}, []string{"spec.engine.port", "less than or equal to 65535"}},
		{"qs gpuMemoryUtilization above 1", qs, map[string]any{"spec.engine.gpuMemoryUtilization": "1.5"}, []string{"spec.engine.gpuMemoryUtilization", "fraction in (0, 1]"}},
		{"qs gpuMemoryUtilization zero", qs, map[string]any{"spec.engine.gpuMemoryUtilization": "0"}, []string{"spec.engine.gpuMemoryUtilization", "fraction in (0, 1]"}},
		{"qs gpuMemoryUtilization not a decimal", qs, map[string]any{"spec.engine.gpuMemoryUtilization": "ninety"}, []string{"spec.engine.gpuMemoryUtilization", "should match"}},
		{"qs hf token secret without name", qs, map[string]any{"spec.engine.hfTokenSecretRef": map[string]any{"key": "token"}}, []string{"spec.engine.hfTokenSecretRef.name", "Required"}},
		{"qs negative replicas", qs, map[string]any{"spec.replicas": int64(-1)}, []string{"spec.replicas", "greater than or equal to 0"}},
		{"qs too many gpus", qs, map[string]any{"spec.resources.gpus": int64(17)}, []string{"spec.resources.gpus", "less than or equal to 16"}},
		{"qs bad gpu resource name", qs, map[string]any{"spec.resources.gpuResourceName": "nvidia.com/gpu/x y"}, []string{"spec.resources.gpuResourceName"}},
		{"qs model cache size and claim", qs, map[string]any{"spec.modelCache": map[string]any{"size": "20Gi", "claimName": "weights"}}, []string{"spec.modelCache", "exactly one of size"}},
		{"qs model cache empty", qs, map[string]any{"spec.modelCache": map[string]any{}}, []string{"spec.modelCache", "exactly one of size"}},
		{"qs storage class without size", qs, map[string]any{"spec.modelCache": map[string]any{"claimName": "w", "storageClassName": "fast"}}, []string{"spec.modelCache", "storageClassName applies only with size"}},
		{"qs fallback without model", qs, map[string]any{"spec.fallback": map[string]any{"replicas": int64(1)}}, []string{"spec.fallback.model", "Required"}},
		{"qs fallback without model name", qs, map[string]any{"spec.fallback": map[string]any{"model": map[string]any{"servedName": "small"}}}, []string{"spec.fallback.model.name", "Required"}},
		{"qs gateway zero replicas", qs, map[string]any{"spec.gateway.replicas": int64(0)}, []string{"spec.gateway.replicas", "greater than or equal to 1"}},
		{"qs trusted proxy not a CIDR", qs, map[string]any{"spec.gateway.trustedProxies": []any{"10.96.0.0/28", "lan"}}, []string{"spec.gateway.trustedProxies[1]", "must be CIDRs"}},
		{"qs negative trusted hops", qs, map[string]any{"spec.gateway.trustedHops": int64(-1)}, []string{"spec.gateway.trustedHops", "greater than or equal to 0"}},
		{"qs too many trusted hops", qs, map[string]any{"spec.gateway.trustedHops": int64(11)}, []string{"spec.gateway.trustedHops", "less than or equal to 10"}},
		{"qs access log mode", qs, map[string]any{"spec.gateway.accessLog": map[string]any{"mode": "Verbose"}}, []string{"spec.gateway.accessLog.mode", "Unsupported value"}},
		{"qs access log sample", qs, map[string]any{"spec.gateway.accessLog": map[string]any{"sample": int64(0)}}, []string{"spec.gateway.accessLog.sample", "greater than or equal to 1"}},
		{"qs tiny body limit", qs, map[string]any{"spec.gateway.maxRequestBodyBytes": int64(10)}, []string{"spec.gateway.maxRequestBodyBytes", "greater than or equal to 1024"}},
		{"qs redis address without port", qs, map[string]any{"spec.gateway.redis": map[string]any{"address": "redis"}}, []string{"spec.gateway.redis.address", "should match"}},
		{"qs redis without a topology", qs, map[string]any{"spec.gateway.redis": map[string]any{"tls": true}}, []string{"spec.gateway.redis", "exactly one of address (a standalone Redis), sentinel or cluster"}},
		{"qs redis address and cluster", qs, map[string]any{"spec.gateway.redis": map[string]any{"address": "r:6379", "cluster": map[string]any{"addresses": []any{"c:6379"}}}}, []string{"spec.gateway.redis", "exactly one of address"}},
		{"qs redis sentinel without master name", qs, map[string]any{"spec.gateway.redis": map[string]any{"sentinel": map[string]any{"addresses": []any{"s:26379"}}}}, []string{"spec.gateway.redis.sentinel.masterName", "Required"}},
		{"qs redis sentinel without addresses", qs, map[string]any{"spec.gateway.redis": map[string]any{"sentinel": map[string]any{"masterName": "m", "addresses": []any{}}}}, []string{"spec.gateway.redis.sentinel.addresses", "at least 1"}},
		{"qs redis cluster address without port", qs, map[string]any{"spec.gateway.redis": map[string]any{"cluster": map[string]any{"addresses": []any{"c:6379", "redis-c"}}}}, []string{"spec.gateway.redis.cluster.addresses[1]", "should match"}},
		{"qs redis CA without TLS", qs, map[string]any{"spec.gateway.redis": map[string]any{"address": "r:6379", "caSecretRef": map[string]any{"name": "ca"}}}, []string{"spec.gateway.redis", "caSecretRef applies only with tls"}},
		{"qs api keys secret without name", qs, map[string]any{"spec.gateway.apiKeysSecretRef": map[string]any{}}, []string{"spec.gateway.apiKeysSecretRef.name", "Required"}},
		{"qs empty exposure", qs, map[string]any{"spec.exposure": map[string]any{}}, []string{"spec.exposure", "needs ingress, httpRoute or both"}},
		{"qs ingress bad host", qs, map[string]any{"spec.exposure.ingress": map[string]any{"host": "Bad_Host!"}}, []string{"spec.exposure.ingress.host", "should match"}},
		{"qs ingress without host", qs, map[string]any{"spec.exposure.ingress": map[string]any{"className": "nginx"}}, []string{"spec.exposure.ingress.host", "Required"}},
		{"qs httpRoute without parents", qs, map[string]any{"spec.exposure.httpRoute": map[string]any{"parentRefs": []any{}}}, []string{"spec.exposure.httpRoute.parentRefs", "at least 1 items"}},
		{"qs httpRoute timeout not a Gateway API duration", qs, map[string]any{"spec.exposure.httpRoute": route(map[string]any{"request": "10 minutes"})}, []string{"spec.exposure.httpRoute.timeouts.request", "should match"}},
		{"qs httpRoute timeout with days", qs, map[string]any{"spec.exposure.httpRoute": route(map[string]any{"request": "1d"})}, []string{"spec.exposure.httpRoute.timeouts.request", "should match"}},
		{"qs httpRoute backend timeout longer than request", qs, map[string]any{"spec.exposure.httpRoute": route(map[string]any{"request": "5m", "backendRequest": "1h"})}, []string{"spec.exposure.httpRoute.timeouts", "must not be longer than timeouts.request"}},
		{"qs httpRoute backend timeout disabled under a request timeout", qs, map[string]any{"spec.exposure.httpRoute": route(map[string]any{"request": "5m", "backendRequest": "0s"})}, []string{"spec.exposure.httpRoute.timeouts", "must not be longer than timeouts.request"}},
		{"qs tool parser with spaces", qs, map[string]any{"spec.model.toolCalling.parser": "hermes 2"}, []string{"spec.model.toolCalling.parser", "should match"}},
		{"qs httpRoute parent without name", qs, map[string]any{"spec.exposure.httpRoute": map[string]any{"parentRefs": []any{map[string]any{"namespace": "gw"}}}}, []string{"spec.exposure.httpRoute.parentRefs[0].name", "Required"}},

		// RateLimitPolicy
		{"rlp without target", rlp, map[string]any{"spec.targetRef": nil}, []string{"spec.targetRef", "Required"}},
		{"rlp target without name", rlp, map[string]any{"spec.targetRef.name": ""}, []string{"spec.targetRef.name", "at least 1 chars"}},
		{"rlp without limits", rlp, map[string]any{"spec.limits": nil}, []string{"spec.limits", "Required"}},
		{"rlp empty limits", rlp, map[string]any{"spec.limits": map[string]any{}}, []string{"spec.limits", "set at least one limit"}},
		{"rlp zero rpm", rlp, map[string]any{"spec.limits.requestsPerMinute": int64(0)}, []string{"spec.limits.requestsPerMinute", "greater than or equal to 1"}},
		{"rlp tokens beyond the limiter", rlp, map[string]any{"spec.limits.tokensPerMinute": int64(18000001)}, []string{"spec.limits.tokensPerMinute", "less than or equal to 18000000"}},
		{"rlp output tokens beyond the limiter", rlp, map[string]any{"spec.limits.outputTokensPerMinute": int64(1000000000)}, []string{"spec.limits.outputTokensPerMinute", "less than or equal to 18000000"}},
		{"rlp ipv6 prefix too short", rlp, map[string]any{"spec.key.ipv6PrefixLength": int64(8)}, []string{"spec.key.ipv6PrefixLength", "greater than or equal to 16"}},
		{"rlp zero assumed max tokens", rlp, map[string]any{"spec.assumedMaxTokens": int64(0)}, []string{"spec.assumedMaxTokens", "greater than or equal to 1"}},
		{"rlp zero concurrency", rlp, map[string]any{"spec.limits.maxConcurrentRequests": int64(0)}, []string{"spec.limits.maxConcurrentRequests", "greater than or equal to 1"}},
		{"rlp unknown algorithm", rlp, map[string]any{"spec.algorithm": "Magic"}, []string{"spec.algorithm", "Unsupported value", `"Hybrid"`}},
		{"rlp sliding log beyond its log", rlp, map[string]any{"spec.algorithm": "SlidingLog", "spec.limits.requestsPerMinute": int64(10001)}, []string{"spec", "at most 10000 with algorithm SlidingLog"}},
		{"rlp sliding log override beyond its log", rlp, map[string]any{"spec.algorithm": "SlidingLog", "spec.overrides": []any{map[string]any{"name": "big", "keys": []any{"k"}, "limits": map[string]any{"requestsPerMinute": int64(20000)}}}}, []string{"spec", "at most 10000 with algorithm SlidingLog"}},
		{"rlp queue without leaky bucket", rlp, map[string]any{"spec.queue": map[string]any{"maxWait": "5s"}}, []string{"spec", "queue needs algorithm LeakyBucket"}},
		{"rlp queue wait too long", rlp, map[string]any{"spec.algorithm": "LeakyBucket", "spec.queue": map[string]any{"maxWait": "11m"}}, []string{"spec.queue.maxWait", "at most 10m"}},
		{"rlp queue without a wait", rlp, map[string]any{"spec.algorithm": "LeakyBucket", "spec.queue": map[string]any{"maxWait": "0s"}}, []string{"spec.queue.maxWait", "greater than 0s"}},
		{"rlp queue of none", rlp, map[string]any{"spec.algorithm": "LeakyBucket", "spec.queue": map[string]any{"maxWait": "1s", "maxQueued": int64(0)}}, []string{"spec.queue.maxQueued", "greater than or equal to 1"}},
		{"rlp unknown criticality", rlp, map[string]any{"spec.criticality": "VIP"}, []string{"spec.criticality", "Unsupported value", `"Sheddable"`}},
		{"rlp criticality header not a header", rlp, map[string]any{"spec.criticalityHeader": "X Class"}, []string{"spec.criticalityHeader", "should match"}},
		{"dp critical ceiling beyond L4", minimalDegradationPlan, map[string]any{"spec.classes.criticalMaxLevel": int64(5)}, []string{"spec.classes.criticalMaxLevel", "less than or equal to 4"}},
		{"rlp daily tokens beyond the limiter", rlp, map[string]any{"spec.limits.tokensPerDay": int64(10000000001)}, []string{"spec.limits.tokensPerDay", "less than or equal to 10000000000"}},
		{"rlp zero hourly requests", rlp, map[string]any{"spec.limits.requestsPerHour": int64(0)}, []string{"spec.limits.requestsPerHour", "greater than or equal to 1"}},
		{"rlp unknown mode", rlp, map[string]any{"spec.mode": "Off"}, []string{"spec.mode", "Unsupported value", `"Shadow"`}},
		{"rlp unknown failure mode", rlp, map[string]any{"spec.failureMode": "Maybe"}, []string{"spec.failureMode", "Unsupported value", `"FailClosed"`}},
		{"rlp header key without header", rlp, map[string]any{"spec.key": map[string]any{"source": "Header"}}, []string{"spec.key", "key.header is required when key.source is Header"}},
		{"rlp header set for client ip", rlp, map[string]any{"spec.key": map[string]any{"source": "ClientIP", "header": "X-User"}}, []string{"spec.key", "not allowed otherwise"}},
		{"rlp bad timezone text", rlp, map[string]any{"spec.timezone": "Asia Shanghai"}, []string{"spec.timezone", "should match"}},
		{"rlp schedule bad start", rlp, map[string]any{"spec.schedules": []any{sched("day", "25:00", "18:00")}}, []string{"spec.schedules[0].start", "should match"}},
		{"rlp schedule bad end", rlp, map[string]any{"spec.schedules": []any{sched("day", "09:00", "9pm")}}, []string{"spec.schedules[0].end", "should match"}},
		{"rlp schedule start equals end", rlp, map[string]any{"spec.schedules": []any{sched("day", "09:00", "09:00")}}, []string{"spec.schedules[0]", "start and end must differ"}},
		{"rlp duplicate schedule names", rlp, map[string]any{"spec.schedules": []any{sched("day", "09:00", "12:00"), sched("day", "13:00", "18:00")}}, []string{"spec.schedules[1]", "Duplicate value"}},
		{"rlp schedule unknown day", rlp, map[string]any{"spec.schedules": []any{withField(sched("day", "09:00", "18:00"), "days", []any{"Funday"})}}, []string{"spec.schedules[0].days[0]", "Unsupported value"}},
		{"rlp schedule empty limits", rlp, map[string]any{"spec.schedules": []any{withField(sched("day", "09:00", "18:00"), "limits", map[string]any{})}}, []string{"spec.schedules[0].limits", "set at least one limit"}},
		{"rlp adaptive zero scale", rlp, map[string]any{"spec.adaptive": []any{adaptive("GPUTemperature", "80", "0")}}, []string{"spec.adaptive[0].scale", "(0, 10]"}},
		{"rlp adaptive scale above 10", rlp, map[string]any{"spec.adaptive": []any{adaptive("GPUTemperature", "80", "11")}}, []string{"spec.adaptive[0].scale", "(0, 10]"}},
		{"rlp adaptive threshold not a decimal", rlp, map[string]any{"spec.adaptive": []any{adaptive("GPUTemperature", "hot", "0.5")}}, []string{"spec.adaptive[0].above", "should match"}},
		{"rlp adaptive PromQL without query", rlp, map[string]any{"spec.adaptive": []any{adaptive("PromQL", "1", "0.5")}}, []string{"spec.adaptive[0]", "query is required when signal is PromQL"}},
		{"rlp adaptive unknown signal", rlp, map[string]any{"spec.adaptive": []any{adaptive("Moon", "1", "0.5")}}, []string{"spec.adaptive[0].signal", "Unsupported value"}},
		{"rlp prometheus bearer and basic auth", rlp, map[string]any{"spec.prometheus": map[string]any{"authorization": bearer(), "basicAuth": basic()}}, []string{"spec.prometheus", "authorization or basicAuth, not both"}},
		{"rlp prometheus tls on http", rlp, map[string]any{"spec.prometheus": map[string]any{"url": "http://thanos:9091", "tlsConfig": map[string]any{"serverName": "thanos"}}}, []string{"spec.prometheus", "tlsConfig needs an https url"}},
		{"rlp prometheus basic auth without password key", rlp, map[string]any{"spec.prometheus.basicAuth": map[string]any{"username": map[string]any{"name": "p", "key": "u"}, "password": map[string]any{"name": "p"}}}, []string{"spec.prometheus.basicAuth.password.key", "Required"}},
		{"rlp override without keys", rlp, map[string]any{"spec.overrides": []any{map[string]any{"name": "gold", "keys": []any{}, "limits": map[string]any{"requestsPerMinute": int64(100)}}}}, []string{"spec.overrides[0].keys", "at least 1 items"}},
		{"rlp duplicate override names", rlp, map[string]any{"spec.overrides": []any{override("gold", "a"), override("gold", "b")}}, []string{"spec.overrides[1]", "Duplicate value"}},

		// DegradationPlan
		{"dp level 5", dp, map[string]any{"spec.levels.0.level": int64(5)}, []string{"spec.levels[0].level", "less than or equal to 4"}},
		{"dp level 0", dp, map[string]any{"spec.levels.0.level": int64(0)}, []string{"spec.levels[0].level", "greater than or equal to 1"}},
		{"dp duplicate levels", dp, map[string]any{"spec.levels": []any{level(2, "GPUTemperature", "80"), level(2, "QueueDepth", "50")}}, []string{"spec.levels[1]", "Duplicate value"}},
		{"dp no levels", dp, map[string]any{"spec.levels": []any{}}, []string{"spec.levels", "at least 1 items"}},
		{"dp level without triggers", dp, map[string]any{"spec.levels.0.when": []any{}}, []string{"spec.levels[0].when", "at least 1 items"}},
		{"dp bad for duration", dp, map[string]any{"spec.levels.0.for": "soon"}, []string{"spec.levels[0].for", "should match"}},
		{"dp GPU signal with query", dp, map[string]any{"spec.levels.0.when.0.query": "up"}, []string{"spec.levels[0].when[0]", "not allowed for the other signals"}},
		{"dp bad cooldown", dp, map[string]any{"spec.cooldown": "2 minutes"}, []string{"spec.cooldown", "should match"}},
		{"dp recovery margin above 100", dp, map[string]any{"spec.recoveryMargin": int64(150)}, []string{"spec.recoveryMargin", "less than or equal to 100"}},
		{"dp prometheus url not http", dp, map[string]any{"spec.prometheus.url": "ftp://prom:9090"}, []string{"spec.prometheus.url", "should match"}},
		{"dp prometheus ca in a secret and a configmap", dp, map[string]any{"spec.prometheus.tlsConfig": map[string]any{"ca": map[string]any{"secret": map[string]any{"name": "a", "key": "ca.crt"}, "configMap": map[string]any{"name": "b", "key": "ca.crt"}}}}, []string{"spec.prometheus.tlsConfig.ca", "exactly one of secret or configMap"}},
		{"dp prometheus ca and insecure", dp, map[string]any{"spec.prometheus.tlsConfig": map[string]any{"insecureSkipVerify": true, "ca": map[string]any{"configMap": map[string]any{"name": "b", "key": "ca.crt"}}}}, []string{"spec.prometheus.tlsConfig", "set ca or insecureSkipVerify, not both"}},
		{"dp prometheus authorization without secret", dp, map[string]any{"spec.prometheus.authorization": map[string]any{"type": "Bearer"}}, []string{"spec.prometheus.authorization.credentials", "Required"}},
		{"dp prometheus authorization type with a space", dp, map[string]any{"spec.prometheus.authorization": withField(bearer(), "type", "Bearer x")}, []string{"spec.prometheus.authorization.type", "should match"}},
		{"qs fallback placement unknown", qs, map[string]any{"spec.fallback": map[string]any{"model": map[string]any{"name": "Qwen/Qwen3-0.6B"}, "placement": "SameNode"}}, []string{"spec.fallback.placement", "Unsupported value"}},
		{"qs fallback memory share above 1", qs, map[string]any{"spec.fallback": map[string]any{"model": map[string]any{"name": "Qwen/Qwen3-0.6B"}, "gpuMemoryUtilization": "1.5"}}, []string{"spec.fallback.gpuMemoryUtilization", "fraction in (0, 1]"}},
		{"dp cache unknown backend", dp, map[string]any{"spec.cache": map[string]any{"enabled": true, "backend": "Disk"}}, []string{"spec.cache.backend", "Unsupported value"}},
		{"dp cache too small", dp, map[string]any{"spec.cache": map[string]any{"enabled": true, "maxBytes": int64(1000)}}, []string{"spec.cache.maxBytes", "greater than or equal to 65536"}},
		{"dp cache ttl too long", dp, map[string]any{"spec.cache": map[string]any{"enabled": true, "ttl": "200h"}}, []string{"spec.cache.ttl", "between 1s and 168h"}},
		{"dp unknown signal", dp, map[string]any{"spec.levels.0.when.0.signal": "TTFT"}, []string{"spec.levels[0].when[0].signal", "Unsupported value", `"P95TimeToFirstTokenSeconds"`}},
		{"dp interval too short", dp, map[string]any{"spec.prometheus.interval": "100ms"}, []string{"spec.prometheus.interval", "between 1s and 1h"}},
		{"dp breaker zero threshold", dp, map[string]any{"spec.circuitBreaker.failureThreshold": int64(0)}, []string{"spec.circuitBreaker.failureThreshold", "greater than or equal to 1"}},
		{"dp breaker zero recovery", dp, map[string]any{"spec.circuitBreaker.recoveryTimeout": "0s"}, []string{"spec.circuitBreaker.recoveryTimeout", "between 1s and 1h"}},
		{"dp static status below 200", dp, map[string]any{"spec.staticResponse.httpStatus": int64(99)}, []string{"spec.staticResponse.httpStatus", "greater than or equal to 200"}},
		{"dp static empty message", dp, map[string]any{"spec.staticResponse.message": ""}, []string{"spec.staticResponse.message", "at least 1 chars"}},
		{"dp override level 7", dp, map[string]any{"spec.override": map[string]any{"level": int64(7)}}, []string{"spec.override.level", "less than or equal to 4"}},
	}
}

func route(timeouts map[string]any) map[string]any {
	return map[string]any{"parentRefs": []any{map[string]any{"name": "gw"}}, "timeouts": timeouts}
}

func bearer() map[string]any {
	return map[string]any{"credentials": map[string]any{"name": "thanos-token"}}
}

func basic() map[string]any {
	return map[string]any{"username": map[string]any{"name": "p", "key": "username"}, "password": map[string]any{"name": "p", "key": "password"}}
}

func sched(name, start, end string) map[string]any {
	return map[string]any{"name": name, "start": start, "end": end, "limits": map[string]any{"requestsPerMinute": int64(50)}}
}

func adaptive(signal, above, scale string) map[string]any {
	return map[string]any{"signal": signal, "above": above, "scale": scale}
}

func override(name, key string) map[string]any {
	return map[string]any{"name": name, "keys": []any{key}, "limits": map[string]any{"requestsPerMinute": int64(100)}}
}

func level(n int64, signal, above string) map[string]any {
	return map[string]any{"level": n, "when": []any{map[string]any{"signal": signal, "above": above}}}
}

func withField(m map[string]any, k string, v any) map[string]any {
	m[k] = v
	return m
}

func TestInvalidManifestsAreRefused(t *testing.T) {
	ns := namespace(t)
	cases := invalidCases()
	if len(cases) < 30 {
		t.Fatalf("only %d invalid cases; the table must cover at least 30", len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := decode(t, tc.base)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("bad-%d", i))
			for path, v := range tc.set {
				setPath(t, obj.Object, path, v)
			}
			err := env.Client.Create(context.Background(), obj)
			if err == nil {
				t.Fatalf("the API server accepted %v", tc.set)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// The minimal manifests themselves must be accepted, or every invalid case proves nothing.
func TestMinimalManifestsAreAccepted(t *testing.T) {
	ns := namespace(t)
	for _, m := range []string{minimalQwenService, minimalRateLimitPolicy, minimalDegradationPlan} {
		obj := decode(t, m)
		obj.SetNamespace(ns)
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Errorf("%s refused: %v", obj.GetKind(), err)
		}
	}
}

// TestFullConnectionSettingsAreAccepted creates the new settings in their valid forms: route
// timeouts (including "0s" to disable), tool calling off or with another parser, and every
// Prometheus credential shape; defaults fill the authorization type and the Secret key.
func TestFullConnectionSettingsAreAccepted(t *testing.T) {
	ns := namespace(t)
	for i, tc := range []struct {
		base string
		set  map[string]any
	}{
		{minimalQwenService, map[string]any{"spec.exposure.httpRoute": route(map[string]any{"request": "1h30m", "backendRequest": "45m"})}},
		{minimalQwenService, map[string]any{"spec.exposure.httpRoute": route(map[string]any{"request": "0s", "backendRequest": "0s"})}},
		{minimalQwenService, map[string]any{"spec.exposure.httpRoute": route(map[string]any{"backendRequest": "500ms"})}},
		{minimalQwenService, map[string]any{"spec.model.toolCalling": map[string]any{"enabled": false}}},
		{minimalQwenService, map[string]any{"spec.model.toolCalling": map[string]any{"parser": "qwen3_coder"}}},
		{minimalRateLimitPolicy, map[string]any{"spec.prometheus": map[string]any{"url": "https://thanos-querier.openshift-monitoring.svc:9091",
			"authorization": bearer(), "tlsConfig": map[string]any{"ca": map[string]any{"configMap": map[string]any{"name": "openshift-service-ca.crt", "key": "service-ca.crt"}}}}}},
		{minimalDegradationPlan, map[string]any{"spec.prometheus": map[string]any{"url": "https://prom:9090", "basicAuth": basic(),
			"tlsConfig": map[string]any{"ca": map[string]any{"secret": map[string]any{"name": "prom-ca", "key": "ca.crt"}}, "serverName": "prometheus"}}}},
		{minimalDegradationPlan, map[string]any{"spec.levels.0.when.0": map[string]any{"signal": "P95TimeToFirstTokenSeconds", "above": "2"}}},
		{minimalDegradationPlan, map[string]any{"spec.cache": map[string]any{"enabled": true, "backend": "Redis", "maxBytes": int64(1 << 20), "ttl": "30m", "shareAcrossKeys": true, "serveAtLevel4": true}}},
	} {
		obj := decode(t, tc.base)
		obj.SetNamespace(ns)
		obj.SetName(fmt.Sprintf("ok-%d", i))
		for path, v := range tc.set {
			setPath(t, obj.Object, path, v)
		}
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Errorf("%s with %v refused: %v", obj.GetKind(), tc.set, err)
			continue
		}
		if a, ok, _ := unstructured.NestedMap(obj.Object, "spec", "prometheus", "authorization"); ok && (a["type"] != "Bearer" ||
			a["credentials"].(map[string]any)["key"] != "token") {
			t.Errorf("authorization defaults: %v", a)
		}
	}
}

// TestRedisTopologiesAreAccepted: each Redis topology, with its passwords and a CA, is valid.
func TestRedisTopologiesAreAccepted(t *testing.T) {
	ns := namespace(t)
	pw := map[string]any{"name": "redis", "key": "password"}
	for i, redis := range []map[string]any{
		{"address": "redis.ai:6379", "passwordSecretRef": pw},
		{"sentinel": map[string]any{"masterName": "mymaster", "addresses": []any{"s-0.s:26379", "s-1.s:26379", "s-2.s:26379"},
			"passwordSecretRef": map[string]any{"name": "sentinel"}}, "passwordSecretRef": pw, "tls": true,
			"caSecretRef": map[string]any{"name": "redis-ca", "key": "ca.crt"}},
		{"cluster": map[string]any{"addresses": []any{"c-0.c:6379", "[fd00::1]:6379"}}, "tls": true},
	} {
		obj := decode(t, minimalQwenService)
		obj.SetNamespace(ns)
		obj.SetName(fmt.Sprintf("redis-%d", i))
		setPath(t, obj.Object, "spec.gateway.redis", redis)
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Errorf("redis %v refused: %v", redis, err)
		}
	}
}

// setPath sets (or deletes, for nil) a dotted path; numeric segments index lists.
func setPath(t *testing.T, obj map[string]any, path string, v any) {
	t.Helper()
	parts := strings.Split(path, ".")
	var cur any = obj
	for i, p := range parts {
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if v == nil {
					delete(c, p)
				} else {
					c[p] = v
				}
				return
			}
			next, ok := c[p]
			if !ok {
				next = map[string]any{}
				c[p] = next
			}
			cur = next
		case []any:
			idx, err := strconv.Atoi(p)
			if err != nil || idx >= len(c) {
				t.Fatalf("bad index %q in %s", p, path)
			}
			if last {
				c[idx] = v
				return
			}
			cur = c[idx]
		default:
			t.Fatalf("cannot descend into %s at %q", path, p)
		}
	}
}

func decode(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
		t.Fatalf("decoding manifest: %v", err)
	}
	return obj
}

var nsCounter int

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T) string {
	t.Helper()
	nsCounter++
	ns := &corev1.Namespace{}
	ns.Name = fmt.Sprintf("t%d-%s", nsCounter, strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	if len(ns.Name) > 60 {
		ns.Name = ns.Name[:60]
	}
	ns.Name = strings.TrimRight(ns.Name, "-")
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}
