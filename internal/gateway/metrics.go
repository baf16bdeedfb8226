package gateway

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the qwen_gateway_* series of API.md, on the gateway's own registry.
type metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec   // model, code, level, upstream
	duration      *prometheus.HistogramVec // model
	ttft          *prometheus.HistogramVec // model
	rateLimited   *prometheus.CounterVec   // reason, mode
	tokens        *prometheus.CounterVec   // direction: input, output
	inflight      prometheus.Gauge
	level         prometheus.Gauge
	circuit       *prometheus.GaugeVec // upstream: 0 closed, 1 half-open, 2 open
	limiterErrors prometheus.Counter
	reloads       *prometheus.CounterVec // result: success, failure
	byClass       *prometheus.CounterVec // class, level
	queued        prometheus.Gauge
	queueWait     *prometheus.HistogramVec // class
}

// latencyBuckets span 5 ms to 5 min: non-streaming generations are long.
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}

func newMetrics() *metrics {
	const ns = "qwen_gateway"
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total",
			Help: "Requests to the completion, Responses and embeddings endpoints by served model, HTTP status code, degradation level and upstream (the engine's name, \"static\" for the gateway's static reply, empty when none was chosen)."}, []string{"model", "code", "level", "upstream"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_duration_seconds",
			Help: "Time from receiving a completion request to the end of its response.", Buckets: latencyBuckets}, []string{"model"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "time_to_first_token_seconds",
			Help:    "Time from receiving a streaming request to sending its first content chunk.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"model"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rate_limited_total",
			Help: "Requests over a limit, by reason (requests, tokens, input_tokens, output_tokens, concurrency, limiter_unavailable, queue_full, requests_per_hour, requests_per_day, tokens_per_hour, tokens_per_day) and mode (Enforce rejects, Shadow only counts)."}, []string{"reason", "mode"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tokens_total",
			Help: "Tokens reported by the upstreams' usage, by direction (input, output)."}, []string{"direction"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "inflight_requests",
			Help: "Completion requests being served."}),
		level: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "degradation_level",
			Help: "The degradation level the gateway applies (0-4)."}),
		circuit: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "upstream_circuit_state",
			Help: "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open."}, []string{"upstream"}),
		limiterErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "limiter_backend_errors_total",
			Help: "Limiter backend calls that failed or timed out."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "config_reloads_total",
			Help: "Configuration loads by result (success, failure)."}, []string{"result"}),
		byClass: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_by_class_total",
			Help: "Completion requests that reached routing, by class (Critical, Standard, Sheddable) and the degradation level they got."}, []string{"class", "level"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "queued_requests",
			Help: "Requests waiting for their turn in a LeakyBucket queue on this replica."}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "queue_wait_seconds",
			Help:    "Time admitted requests waited in a LeakyBucket queue before going on, by class (not part of request_duration_seconds).",
			Buckets: latencyBuckets}, []string{"class"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.ttft, m.rateLimited, m.tokens, m.inflight, m.level,
		m.circuit, m.limiterErrors, m.reloads, m.byClass, m.queued, m.queueWait,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	for _, reason := range append(append(kindNames[:], reasonUnavailable, reasonQueueFull), budgetReasons...) {
		for _, mode := range []string{"Enforce", "Shadow"} {
			m.rateLimited.WithLabelValues(reason, mode)
		}
	}
	for _, d := range []string{"input", "output"} {
		m.tokens.WithLabelValues(d)
	}
	return m
}

// record is what one completion request did, filled in as it goes through the handler;
// metrics.end writes every per-request series from it, once, when the request is over.
type record struct {
	// start is when the request was received, moved past the time it waited in a LeakyBucket
	// queue: the latencies measure the gateway and the engine, not the queue.
	start time.Time
	// ep is the endpoint; requestID the client's X-Request-Id; keyID the API key's id;
	// client the limiter key; limited whether a rate limit decided the request. The access
	// log reads them.
	ep        endpoint
	requestID string
	keyID     string
	client    string
	limited   bool
	// model is the served model the request named; empty until it named one.
	model string
	// level is the degradation level the request was served at (its class's).
	level int
	// upstream is the name of the upstream that answered, gatewayconfig.StaticUpstream for the
	// gateway's static reply, CacheUpstream for a cached one, empty when the request was refused
	// before it was routed.
	upstream string
	// class is the request's class; routed says it reached routing (and class is known).
	class  class
	routed bool
	// firstToken is when the first content chunk of a stream was sent (zero: none was).
	firstToken time.Time
	// usage is the upstream's usage report, or what a stream cut short streamed (nil: unknown).
	usage *usage
	// status, when set, is the code the request counts as instead of the one sent: a stream
	// the upstream broke off after its 200 counts as 502.
	status int
	// overLimits are the reasons of the limits the request was over: every one in Shadow
	// mode, the one that rejected it in Enforce mode; mode is the policy's mode.
	overLimits []string
	mode       string
	// limiterErrors counts the limiter backend calls that failed or timed out.
	limiterErrors int
	// cacheKey is the request's response cache key ("" without a cache).
	cacheKey string
}

// begin counts a request in flight and starts its record.
func (m *metrics) begin(start time.Time, level int) *record {
	m.inflight.Inc()
	return &record{start: start, level: level}
}

// end writes the request's series: status code, duration, time to first token, tokens, the
// limits it was over and the limiter errors it met; and counts it out of flight.
func (m *metrics) end(r *record, code int, now time.Time) {
	m.inflight.Dec()
	if r.status != 0 {
		code = r.status
	}
	m.requests.WithLabelValues(r.model, strconv.Itoa(code), strconv.Itoa(r.level), r.upstream).Inc()
	m.duration.WithLabelValues(r.model).Observe(now.Sub(r.start).Seconds())
	if r.routed {
		m.byClass.WithLabelValues(r.class.String(), strconv.Itoa(r.level)).Inc()
	}
	if !r.firstToken.IsZero() {
		m.ttft.WithLabelValues(r.model).Observe(r.firstToken.Sub(r.start).Seconds())
	}
	if u := r.usage; u != nil {
		m.tokens.WithLabelValues("input").Add(float64(u.PromptTokens))
		m.tokens.WithLabelValues("output").Add(float64(u.CompletionTokens))
	}
	for _, reason := range r.overLimits {
		m.rateLimited.WithLabelValues(reason, r.mode).Inc()
	}
	if r.limiterErrors > 0 {
		m.limiterErrors.Add(float64(r.limiterErrors))
	}
}
