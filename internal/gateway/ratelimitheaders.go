package gateway

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// policyHeader renders a tier's quotas as a RateLimit-Policy field value
// (draft-ietf-httpapi-ratelimit-headers-09): `"name";q=30;w=60, "name-concurrency";q=8;qu="concurrency"`.
// Token quotas are named "<policy>-tokens", "-input_tokens", "-output_tokens" and count tokens.
func policyHeader(t *tier) string {
	var parts []string
	for _, q := range t.quotas {
		parts = append(parts, fmt.Sprintf("%s;q=%d;w=%d", sfString(q.item), q.rule.Limit, int64(q.rule.Window/time.Second)))
	}
	if t.maxConcurrent > 0 {
		parts = append(parts, fmt.Sprintf("%s;q=%d;qu=\"concurrency\"", sfString(t.concItem), t.maxConcurrent))
	}
	return strings.Join(parts, ", ")
}

// sfString quotes s as a structured-field string, dropping characters it cannot hold.
func sfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// seconds rounds a duration up to whole seconds, at least min.
func seconds(d time.Duration, min int64) int64 {
	return max(int64(math.Ceil(d.Seconds())), min)
}

// writeRateLimited writes the 429 reply: Retry-After, RateLimit-Policy, RateLimit,
// X-RateLimit-Limit|Remaining|Reset (Reset in seconds from now) and the OpenAI error body.
func writeRateLimited(w http.ResponseWriter, rej *rejection) {
	d := rej.d
	retry := seconds(d.RetryAfter, 1)
	reset := seconds(d.Reset, 0)
	limit := d.Limit
	var item, msg string
	switch {
	case rej.reason == reasonQueueFull:
		item = rej.q.item
		msg = fmt.Sprintf("The request queue is full and other clients' requests took its place. Please retry after %d s.", retry)
	case rej.q != nil:
		item = rej.q.item
		if limit == 0 {
			limit = rej.q.rule.Limit
		}
		unit := strings.ReplaceAll(rej.q.kind.String(), "_", " ")
		msg = fmt.Sprintf("Rate limit reached: %d %s per %s. Please retry after %d s.", limit, unit, rej.q.per, retry)
	case rej.reason == kindConcurrency.String():
		msg = fmt.Sprintf("Rate limit reached: at most %d concurrent requests. Please retry after %d s.", limit, retry)
	default:
		if len(rej.t.quotas) > 0 {
			limit = rej.t.quotas[0].rule.Limit
		}
		msg = fmt.Sprintf("Rate limiter unavailable. Please retry after %d s.", retry)
	}
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(retry, 10))
	if rej.t.policyHeader != "" {
		h.Set("RateLimit-Policy", rej.t.policyHeader)
	}
	if rej.q != nil || rej.reason == kindConcurrency.String() {
		if rej.q == nil {
			item = rej.t.concItem
		}
		h.Set("RateLimit", fmt.Sprintf("%s;r=%d;t=%d", sfString(item), d.Remaining, reset))
	}
	h.Set("X-RateLimit-Limit", strconv.FormatInt(limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(d.Remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	writeError(w, &apiError{status: http.StatusTooManyRequests, message: msg, typ: "rate_limit_error", code: "rate_limit_exceeded"})
}
