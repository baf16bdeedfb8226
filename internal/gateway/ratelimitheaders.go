package gateway

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/qwenops/qwen-operator/internal/ratelimit"
)

// The quota headers, in canonical form so that they are set without canonicalizing.
//
// Every response to a request the limits decided carries, from those decisions:
//   - RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers): every quota with
//     its remaining units r and t, the seconds until it gives more;
//   - X-RateLimit-Limit|Remaining|Reset: the request quota (on a 429, the quota that refused);
//   - OpenAI's x-ratelimit-limit|remaining|reset-requests and -tokens, resets in OpenAI's
//     duration format ("1s", "6m0s"); the tokens ones show the token quota with the least left.
//
// A quota's reset is one number wherever it appears: for a quota that admitted the request,
// the time until it is whole again; for a quota the request was over (a 429, or Shadow mode
// noting it), the time until the same request fits, which is also Retry-After on a 429.
const (
	hRetryAfter    = "Retry-After"
	hPolicy        = "Ratelimit-Policy"
	hRateLimit     = "Ratelimit"
	hLimit         = "X-Ratelimit-Limit"
	hRemaining     = "X-Ratelimit-Remaining"
	hReset         = "X-Ratelimit-Reset"
	hLimitReq      = "X-Ratelimit-Limit-Requests"
	hRemainingReq  = "X-Ratelimit-Remaining-Requests"
	hResetReq      = "X-Ratelimit-Reset-Requests"
	hLimitTok      = "X-Ratelimit-Limit-Tokens"
	hRemainingTok  = "X-Ratelimit-Remaining-Tokens"
	hResetTok      = "X-Ratelimit-Reset-Tokens"
	maxQuotaHeader = 12 // the most quota headers one response carries
)

// maxQuotas is the most quotas a tier has: requests, tokens, input and output tokens per
// minute, and the hourly and daily request and token budgets.
const maxQuotas = 8

// quotaView is what one response says about the client's quotas: the decision of each quota
// of tier t the request was decided against (by index into t.quotas), each taken once.
type quotaView struct {
	t       *tier
	d       [maxQuotas]ratelimit.Decision
	decided uint8 // bit i: t.quotas[i] was decided
}

func (v *quotaView) set(i int, d ratelimit.Decision) {
	v.d[i], v.decided = d, v.decided|1<<i
}

func (v *quotaView) has(i int) bool { return v.decided&(1<<i) != 0 }

// reset is the seconds a decided quota's headers give as its reset (see the constants).
func (v *quotaView) reset(i int) int64 {
	if d := &v.d[i]; !d.Allowed {
		return seconds(d.RetryAfter, 1)
	}
	return seconds(v.d[i].Reset, 0)
}

// quotaHeaders are a tier's header values that do not change per request, computed once
// when the config is applied; the []string values are shared by every response (net/http
// only reads them, and their capacity is their length, so an Add copies).
type quotaHeaders struct {
	policy []string // RateLimit-Policy
	// per quota: the limit, and the RateLimit item up to its r parameter (`"name";r=`)
	limit [maxQuotas][]string
	item  [maxQuotas]string
	// requests is the index of the request quota (-1: none); tokens are the indexes of the
	// token quotas.
	requests int
	tokens   []int
}

func newQuotaHeaders(t *tier) quotaHeaders {
	qh := quotaHeaders{requests: -1}
	if t.policyHeader != "" {
		qh.policy = []string{t.policyHeader}
	}
	for i, q := range t.quotas {
		qh.limit[i] = []string{strconv.FormatInt(q.rule.Limit, 10)}
		qh.item[i] = sfString(q.item) + ";r="
		if q.kind == kindRequests {
			if qh.requests < 0 { // the per-minute quota, which comes first
				qh.requests = i
			}
		} else {
			qh.tokens = append(qh.tokens, i)
		}
	}
	return qh
}

// headerValues are the per-request header values, appended to one buffer (the caller's, on
// its stack) and ended one by one, so that a response's values cost one string and one slice.
type headerValues struct {
	keys [maxQuotaHeader]string
	ends [maxQuotaHeader]int
	n    int
}

// end ends the value of key at the buffer's length n.
func (hv *headerValues) end(key string, n int) {
	hv.keys[hv.n], hv.ends[hv.n] = key, n
	hv.n++
}

// appendDuration appends whole seconds the way OpenAI (and Go) spell a duration: 45s, 6m0s, 1h0m5s.
func appendDuration(b []byte, secs int64) []byte {
	if h := secs / 3600; h > 0 {
		b = append(strconv.AppendInt(b, h, 10), 'h')
		secs %= 3600
		b = append(strconv.AppendInt(b, secs/60, 10), 'm')
	} else if m := secs / 60; m > 0 {
		b = append(strconv.AppendInt(b, m, 10), 'm')
	}
	return append(strconv.AppendInt(b, secs%60, 10), 's')
}

// writeTo sets the values ended in b in h.
func (hv *headerValues) writeTo(h http.Header, b []byte) {
	s := string(b)
	vals := make([]string, hv.n)
	from := 0
	for i := range hv.n {
		vals[i] = s[from:hv.ends[i]]
		h[hv.keys[i]] = vals[i : i+1 : i+1]
		from = hv.ends[i]
	}
}

// write sets the quota headers of v in h (nothing when no quota was decided).
func (v *quotaView) write(h http.Header) {
	if v.t == nil || v.decided == 0 {
		return
	}
	qh := &v.t.headers
	if qh.policy != nil {
		h[hPolicy] = qh.policy
	}
	var buf [384]byte
	var hv headerValues
	b := buf[:0]
	// RateLimit: every decided quota.
	primary := -1
	for i := range v.t.quotas {
		if !v.has(i) {
			continue
		}
		if primary >= 0 {
			b = append(b, ", "...)
		}
		if primary < 0 || i == qh.requests {
			primary = i
		}
		b = append(b, qh.item[i]...)
		b = strconv.AppendInt(b, v.d[i].Remaining, 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, v.reset(i), 10)
	}
	hv.end(hRateLimit, len(b))
	h[hLimit] = qh.limit[primary]
	b = strconv.AppendInt(b, v.d[primary].Remaining, 10)
	hv.end(hRemaining, len(b))
	b = strconv.AppendInt(b, v.reset(primary), 10)
	hv.end(hReset, len(b))
	if i := qh.requests; i >= 0 {
		h[hLimitReq] = qh.limit[i]
		if v.has(i) {
			b = strconv.AppendInt(b, v.d[i].Remaining, 10)
			hv.end(hRemainingReq, len(b))
			b = appendDuration(b, v.reset(i))
			hv.end(hResetReq, len(b))
		}
	}
	tok := -1
	for _, i := range qh.tokens {
		if v.has(i) && (tok < 0 || v.d[i].Remaining < v.d[tok].Remaining) {
			tok = i
		}
	}
	switch {
	case tok >= 0:
		h[hLimitTok] = qh.limit[tok]
		b = strconv.AppendInt(b, v.d[tok].Remaining, 10)
		hv.end(hRemainingTok, len(b))
		b = appendDuration(b, v.reset(tok))
		hv.end(hResetTok, len(b))
	case len(qh.tokens) > 0:
		h[hLimitTok] = qh.limit[qh.tokens[0]]
	}
	hv.writeTo(h, b)
}

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

// writeRateLimited writes the 429 reply from the one decision that refused the request:
// Retry-After and the quota headers of that quota alone (its reset is the same Retry-After
// everywhere), and the OpenAI error body.
func writeRateLimited(w http.ResponseWriter, rej *rejection) {
	d := rej.d
	retry := seconds(d.RetryAfter, 1)
	h := w.Header()
	if rej.t.headers.policy != nil {
		h[hPolicy] = rej.t.headers.policy
	}
	var msg string
	switch {
	case rej.reason == reasonQueueFull:
		if rej.q >= 0 {
			v := quotaView{t: rej.t}
			v.set(rej.q, d)
			v.write(h)
		}
		msg = fmt.Sprintf("The request queue is full and other clients' requests took its place. Please retry after %d s.", retry)
	case rej.q >= 0:
		v := quotaView{t: rej.t}
		v.set(rej.q, d)
		v.write(h)
		q := &rej.t.quotas[rej.q]
		unit := strings.ReplaceAll(q.kind.String(), "_", " ")
		msg = fmt.Sprintf("Rate limit reached: %d %s per %s. Please retry after %d s.", q.rule.Limit, unit, q.per, retry)
	case rej.reason == kindConcurrency.String():
		h.Set(hRateLimit, fmt.Sprintf("%s;r=0;t=%d", sfString(rej.t.concItem), retry))
		h.Set(hLimit, strconv.FormatInt(d.Limit, 10))
		h.Set(hRemaining, "0")
		h.Set(hReset, strconv.FormatInt(retry, 10))
		msg = fmt.Sprintf("Rate limit reached: at most %d concurrent requests. Please retry after %d s.", d.Limit, retry)
	default: // the limiter could not decide (FailClosed)
		msg = fmt.Sprintf("Rate limiter unavailable. Please retry after %d s.", retry)
	}
	h.Set(hRetryAfter, strconv.FormatInt(retry, 10))
	writeError(w, &apiError{status: http.StatusTooManyRequests, message: msg, typ: "rate_limit_error", code: "rate_limit_exceeded"})
}
