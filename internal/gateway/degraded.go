package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// How a program tells a degraded answer from a real one (docs/gateway.md):
//   - X-Qwen-Upstream names what answered: the upstream's name, "cache" for a cached reply, or
//     "static" for the gateway's static reply (also the 503 it gives when no upstream can
//     answer and none is configured);
//   - X-Qwen-Degradation-Level: N on every answer served at level N > 0;
//   - system_fingerprint, in a chat or text completion (and each chunk of its stream):
//     "qwen-static" for the static reply, "qwen-cache" for a cached reply,
//     "qwen-degraded-l<N>" for an engine's answer at
//     level N > 0, the engine's own value otherwise.
const (
	hDegradationLevel = "X-Qwen-Degradation-Level"
	hUpstream         = "X-Qwen-Upstream"
	// fingerprintStatic is the system_fingerprint of the gateway's static reply.
	fingerprintStatic = "qwen-static"
)

// levelHeaders are the X-Qwen-Degradation-Level values, shared by every response.
var levelHeaders = [...][]string{nil, {"1"}, {"2"}, {"3"}, {"4"}}

// degradedFingerprints are the system_fingerprint values of engine answers at levels 1-3
// (level 4 calls no engine), as JSON strings.
var degradedFingerprints = [...]json.RawMessage{nil, json.RawMessage(`"qwen-degraded-l1"`),
	json.RawMessage(`"qwen-degraded-l2"`), json.RawMessage(`"qwen-degraded-l3"`)}

// fingerprint is the system_fingerprint of an engine's answer at level (nil at level 0: the
// engine's own stays).
func fingerprint(level int) json.RawMessage {
	if level <= 0 || level >= len(degradedFingerprints) {
		return nil
	}
	return degradedFingerprints[level]
}

// setRouteHeaders sets the headers that say how the request was served: the level, when
// degraded, and what answered.
func setRouteHeaders(h http.Header, rt *route) {
	if rt.level > 0 && rt.level < len(levelHeaders) {
		h[hDegradationLevel] = levelHeaders[rt.level]
	}
	if rt.target == nil {
		h.Set(hUpstream, gatewayconfig.StaticUpstream)
	} else {
		h.Set(hUpstream, rt.target.name)
	}
}

// withFingerprint returns a completion response body with its system_fingerprint set to fp
// (body unchanged when it is not a JSON object).
func withFingerprint(body []byte, fp json.RawMessage) []byte {
	o, err := parseObject(body)
	if err != nil {
		return body
	}
	return o.with([]edit{{"system_fingerprint", fp}})
}
