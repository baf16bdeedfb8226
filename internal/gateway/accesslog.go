package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sync/atomic"
	"time"
)

// AccessLog configures the structured access log: one record (msg "access") per request
// served on a completion, Responses or embeddings endpoint, as JSON when Logger has a JSON
// handler. A record carries the request's time (when it arrived, or when it left a LeakyBucket queue), path, request_id, key_id (the
// API key's id, never the key), client (a hash of the limiter key: no client address is
// logged), model, degradation_level, status, upstream, prompt_tokens and completion_tokens (as the
// upstream reported them), latency_ms, ttft_ms (streams), limit (admitted, rejected or
// shadow_over; absent without a rate limit), over (the limits it was over) and
// limiter_errors. See docs/gateway.md.
type AccessLog struct {
	// Logger receives the records; nil turns the access log off (the default).
	Logger *slog.Logger
	// ErrorsOnly logs only requests answered with a status of 400 or more (a stream the
	// upstream broke off counts as the 502 of the metrics).
	ErrorsOnly bool
	// Sample logs one in Sample of the requests that qualify: the first, the Sample+1-th, and
	// so on. 0 and 1 log every one.
	Sample int
}

// accessLog writes the access log; a nil *accessLog logs nothing.
type accessLog struct {
	l          *slog.Logger
	errorsOnly bool
	sample     uint64
	seen       atomic.Uint64
}

func newAccessLog(o AccessLog) *accessLog {
	if o.Logger == nil {
		return nil
	}
	return &accessLog{l: o.Logger, errorsOnly: o.ErrorsOnly, sample: uint64(max(o.Sample, 1))}
}

// finish ends a request: its metrics, then its access log record.
func (g *Gateway) finish(rec *record, code int) {
	now := g.now()
	g.m.end(rec, code, now)
	g.access.log(rec, code, now)
}

// Limit decisions in the access log.
const (
	limitAdmitted   = "admitted"
	limitRejected   = "rejected"
	limitShadowOver = "shadow_over"
)

// log writes the record of a request that ended at end with code (rec.status wins, as in
// the metrics), when it qualifies and is sampled.
func (a *accessLog) log(rec *record, code int, end time.Time) {
	if a == nil {
		return
	}
	if rec.status != 0 {
		code = rec.status
	}
	if a.errorsOnly && code < 400 {
		return
	}
	if a.sample > 1 && (a.seen.Add(1)-1)%a.sample != 0 {
		return
	}
	r := slog.NewRecord(rec.start, slog.LevelInfo, "access", 0)
	r.AddAttrs(slog.String("path", rec.ep.path()))
	if rec.requestID != "" {
		r.AddAttrs(slog.String("request_id", rec.requestID))
	}
	if rec.keyID != "" {
		r.AddAttrs(slog.String("key_id", rec.keyID))
	}
	if rec.client != "" {
		r.AddAttrs(slog.String("client", clientHash(rec.client)))
	}
	r.AddAttrs(slog.String("model", rec.model), slog.Int("degradation_level", rec.level), slog.Int("status", code),
		slog.String("upstream", rec.upstream))
	if u := rec.usage; u != nil {
		r.AddAttrs(slog.Int64("prompt_tokens", u.PromptTokens), slog.Int64("completion_tokens", u.CompletionTokens))
	}
	r.AddAttrs(slog.Float64("latency_ms", millis(end.Sub(rec.start))))
	if !rec.firstToken.IsZero() {
		r.AddAttrs(slog.Float64("ttft_ms", millis(rec.firstToken.Sub(rec.start))))
	}
	if rec.limited {
		decision := limitAdmitted
		switch {
		case len(rec.overLimits) == 0:
		case rec.mode == "Shadow":
			decision = limitShadowOver
		default:
			decision = limitRejected
		}
		r.AddAttrs(slog.String("limit", decision))
		if len(rec.overLimits) > 0 {
			r.AddAttrs(slog.Any("over", rec.overLimits))
		}
	}
	if rec.limiterErrors > 0 {
		r.AddAttrs(slog.Int("limiter_errors", rec.limiterErrors))
	}
	_ = a.l.Handler().Handle(context.Background(), r)
}

// clientHash identifies a client in the access log without its address or header value:
// the first 8 bytes of the SHA-256 of its limiter key, in hex.
func clientHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
