package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
	"github.com/qwenops/qwen-operator/internal/respcache"
)

// cacheTimeout bounds one Redis call of the response cache: a lookup stands between a
// request and its static reply, so it must be short.
const cacheTimeout = 100 * time.Millisecond

// responseCache is the response cache of one applied config (nil: no cache).
type responseCache struct {
	store    respcache.Store
	ttl      time.Duration
	maxEntry int64 // larger answers are not cached
	share    bool  // one entry serves every API key
	atL4     bool  // also serve at level 4
	backend  string
	m        *cacheMetrics
}

// cacheMetrics are the qwen_gateway_cache_* series.
type cacheMetrics struct {
	lookups *prometheus.CounterVec // result: hit, miss, error
	stored  prometheus.Counter
	bytes   prometheus.GaugeFunc
}

func newCacheMetrics(reg *prometheus.Registry, mem func() *respcache.Memory) *cacheMetrics {
	const ns = "qwen_gateway"
	m := &cacheMetrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "cache_lookups_total",
			Help: "Response cache lookups for requests no upstream could take, by result (hit, miss, error)."}, []string{"result"}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "cache_stored_bytes_total",
			Help: "Bytes of answers written to the response cache."}),
		bytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "cache_bytes",
			Help: "Bytes held by the in-memory response cache, bookkeeping included (0 with the Redis backend)."},
			func() float64 {
				if c := mem(); c != nil {
					return float64(c.Bytes())
				}
				return 0
			}),
	}
	reg.MustRegister(m.lookups, m.stored, m.bytes)
	for _, r := range []string{"hit", "miss", "error"} {
		m.lookups.WithLabelValues(r)
	}
	return m
}

// responseCache builds the cache of cfg: the memory store is kept across reloads (resized to
// the new bound), the Redis store uses the limiter's connection. Called with g.mu held, after
// the limiter is set up.
func (g *Gateway) responseCache(cfg *gatewayconfig.Config) *responseCache {
	c := cfg.Degradation.Cache
	if c == nil {
		g.cacheMem.Store(nil)
		return nil
	}
	rc := &responseCache{ttl: c.TTL.Duration, maxEntry: c.MaxBytes / 8, share: c.ShareAcrossKeys,
		atL4: c.ServeAtLevel4, m: g.cm}
	if c.Backend == gatewayconfig.CacheRedis && cfg.RateLimit != nil && cfg.RateLimit.Redis != nil && g.redis != nil {
		g.cacheMem.Store(nil)
		lim := g.redis.lim
		rc.store, rc.backend = &respcache.Redis{Client: lim.conn}, "redis"
		return rc
	}
	mem := g.cacheMem.Load()
	if mem == nil {
		mem = respcache.NewMemory(c.MaxBytes)
		g.cacheMem.Store(mem)
	} else {
		mem.SetMax(c.MaxBytes)
	}
	rc.store, rc.backend = mem, "memory"
	return rc
}

// conn is the limiter's Redis client, nil until it has connected.
func (l *redisLimiter) conn() rueidis.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client
}

// skippedKeyFields do not change the answer, only how it is delivered.
var skippedKeyFields = []string{"stream", "stream_options"}

// key is the cache key of req for the client with API key id keyID: a SHA-256 of the
// endpoint, the key id (unless entries are shared) and every body field but stream and
// stream_options, fields sorted and values compacted, so that the same question asked with
// other spacing or field order finds the same answer. "" when there is no cache.
func (c *responseCache) key(req *request, keyID string) string {
	if c == nil {
		return ""
	}
	if req.ep != chatEndpoint && req.ep != completionsEndpoint {
		return "" // Responses and embeddings are not cached
	}
	fields := make([]member, 0, len(req.fields)) // keys are distinct (scanObject)
	for _, m := range req.fields {
		if !slices.Contains(skippedKeyFields, string(m.name)) {
			fields = append(fields, m)
		}
	}
	slices.SortFunc(fields, func(a, b member) int { return bytes.Compare(a.name, b.name) })
	h := sha256.New()
	var buf bytes.Buffer
	buf.WriteString(req.ep.path())
	buf.WriteByte(0)
	if !c.share {
		buf.WriteString(keyID)
	}
	buf.WriteByte(0)
	for _, m := range fields {
		buf.WriteString(strconv.Quote(string(m.name)))
		buf.WriteByte(':')
		if json.Compact(&buf, m.val) != nil {
			buf.Write(m.val)
		}
		buf.WriteByte(0)
	}
	h.Write(buf.Bytes())
	return hex.EncodeToString(h.Sum(nil))
}

// serveCached answers a request no upstream can take from the response cache, instead of the
// static reply or 503; at level 4 only when the config says so. It reports whether it
// answered. A hit carries X-Qwen-Cache: hit and the level header, and is sent as an event
// stream when the client asked for one; a miss carries X-Qwen-Cache: miss and the caller
// answers as before.
func (g *Gateway) serveCached(w *responseWriter, r *http.Request, st *state, req *request, rt *route, rec *record) bool {
	c := st.cache
	if c == nil || rec.cacheKey == "" || (rt.level >= 4 && !c.atL4) {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), cacheTimeout)
	body, err := c.store.Get(ctx, rec.cacheKey, g.now())
	cancel()
	switch {
	case err != nil:
		c.m.lookups.WithLabelValues("error").Inc()
		g.log.Warn("response cache lookup failed", "backend", c.backend, "err", err)
	case body == nil:
		c.m.lookups.WithLabelValues("miss").Inc()
	}
	if body == nil {
		w.Header().Set("X-Qwen-Cache", "miss")
		return false
	}
	if req.hideReasoning { // the cache keeps the engine's answer, reasoning included
		body = stripReasoning(body, "message")
	}
	var sse []byte
	if req.stream {
		if sse, _, err = completionToSSE(req.ep, body, req.includeUsage, cacheFingerprint); err != nil {
			c.m.lookups.WithLabelValues("error").Inc()
			w.Header().Set("X-Qwen-Cache", "miss")
			return false
		}
	}
	c.m.lookups.WithLabelValues("hit").Inc()
	h := w.Header()
	h.Set("X-Qwen-Cache", "hit")
	h.Set(hUpstream, cacheUpstream)
	h.Set("X-Qwen-Degradation-Level", strconv.Itoa(rt.level))
	if req.stream {
		setSSEHeaders(h)
		w.WriteHeader(http.StatusOK)
		rec.firstToken = g.now()
		w.Write(sse)
		w.Flush()
		return true
	}
	body = withFingerprint(body, cacheFingerprint)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return true
}

// cacheUpstream is what X-Qwen-Upstream and the metrics' upstream label say of a cached reply.
const cacheUpstream = gatewayconfig.CacheUpstream

// cacheFingerprint is the system_fingerprint of a cached reply (docs/gateway.md).
var cacheFingerprint = json.RawMessage(`"qwen-cache"`)

// cacheFill stores a successful non-streaming answer (the completion JSON the engine sent).
func (g *Gateway) cacheFill(r *http.Request, st *state, rec *record, body []byte) {
	c := st.cache
	if c == nil || rec.cacheKey == "" || int64(len(body)) > c.maxEntry {
		return
	}
	g.cachePut(r, c, rec.cacheKey, body)
}

func (g *Gateway) cachePut(r *http.Request, c *responseCache, key string, body []byte) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), cacheTimeout)
	defer cancel()
	if err := c.store.Put(ctx, key, body, c.ttl, g.now()); err != nil {
		if err != respcache.ErrTooLarge {
			g.log.Warn("response cache store failed", "backend", c.backend, "err", err)
		}
		return
	}
	c.m.stored.Add(float64(len(body)))
}

// cacheTee is the writer a stream is piped through while the cache is on: it passes every
// write to the client and keeps a copy, up to the largest entry, to assemble the answer from.
type cacheTee struct {
	*responseWriter
	buf  bytes.Buffer
	max  int64
	over bool
}

// teeFor returns the writer to pipe a stream through: w itself when nothing is cached.
func (c *responseCache) teeFor(w *responseWriter, rec *record) http.ResponseWriter {
	if c == nil || rec.cacheKey == "" {
		return w
	}
	return &cacheTee{responseWriter: w, max: c.maxEntry}
}

func (t *cacheTee) Write(b []byte) (int, error) {
	if !t.over {
		if int64(t.buf.Len()+len(b)) > t.max {
			t.over, t.buf = true, bytes.Buffer{}
		} else {
			t.buf.Write(b)
		}
	}
	return t.responseWriter.Write(b)
}

// cacheFillStream stores a stream that ended with data: [DONE] and no error, assembled into
// the completion a non-streaming request would have got (u is the usage the stream reported).
func (g *Gateway) cacheFillStream(r *http.Request, st *state, rec *record, w http.ResponseWriter, ep endpoint, u *usage, complete bool) {
	t, ok := w.(*cacheTee)
	if !ok || !complete || t.over {
		return
	}
	body, ok := assembleStream(ep, t.buf.Bytes(), u)
	if !ok || int64(len(body)) > st.cache.maxEntry {
		return
	}
	g.cachePut(r, st.cache, rec.cacheKey, body)
}

// streamChoice accumulates one choice of a stream.
type streamChoice struct {
	index  json.RawMessage
	role   string
	fields map[string]*strings.Builder // delta (chat) or choice (text) string fields
	order  []string
	finish json.RawMessage
}

// assembleStream turns the data events of a complete stream into a non-streaming completion:
// the string fields of each choice's deltas (content, reasoning_content) or its text
// concatenated, the last finish_reason, and usage. A stream carrying anything it cannot
// rebuild exactly (tool calls, logprobs, an error event) is not assembled.
func assembleStream(ep endpoint, stream []byte, u *usage) ([]byte, bool) {
	var head struct {
		ID                string          `json:"id"`
		Created           int64           `json:"created"`
		Model             string          `json:"model"`
		SystemFingerprint json.RawMessage `json:"system_fingerprint,omitempty"`
	}
	var choices []*streamChoice
	byIndex := map[string]*streamChoice{}
	for line := range bytes.Lines(stream) {
		data, ok := bytes.CutPrefix(line, dataPrefix)
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if bytes.Equal(data, doneData) {
			break
		}
		var ev struct {
			ID                string                       `json:"id"`
			Created           int64                        `json:"created"`
			Model             string                       `json:"model"`
			SystemFingerprint json.RawMessage              `json:"system_fingerprint"`
			Error             json.RawMessage              `json:"error"`
			Choices           []map[string]json.RawMessage `json:"choices"`
		}
		if json.Unmarshal(data, &ev) != nil || len(ev.Error) > 0 && !isNull(ev.Error) {
			return nil, false
		}
		if head.ID == "" {
			head.ID, head.Created, head.Model = ev.ID, ev.Created, ev.Model
		}
		if len(ev.SystemFingerprint) > 0 && !isNull(ev.SystemFingerprint) {
			head.SystemFingerprint = ev.SystemFingerprint
		}
		for _, ch := range ev.Choices {
			idx := string(orNull(ch["index"]))
			sc := byIndex[idx]
			if sc == nil {
				sc = &streamChoice{index: ch["index"], fields: map[string]*strings.Builder{}}
				byIndex[idx] = sc
				choices = append(choices, sc)
			}
			if lp := ch["logprobs"]; len(lp) > 0 && !isNull(lp) {
				return nil, false
			}
			if f := ch["finish_reason"]; len(f) > 0 && !isNull(f) {
				sc.finish = f
			}
			src := ch
			if ep == chatEndpoint {
				var delta map[string]json.RawMessage
				if err := json.Unmarshal(orNull(ch["delta"]), &delta); err != nil {
					return nil, false
				}
				src = delta
			}
			for k, v := range src {
				switch {
				case ep != chatEndpoint && k != "text":
					continue // index, logprobs, finish_reason, stop_reason...
				case isNull(v):
					continue
				}
				var s string
				if json.Unmarshal(v, &s) != nil {
					return nil, false // tool_calls, or anything else not text
				}
				if k == "role" {
					sc.role = s
					continue
				}
				b := sc.fields[k]
				if b == nil {
					b = &strings.Builder{}
					sc.fields[k] = b
					sc.order = append(sc.order, k)
				}
				b.WriteString(s)
			}
		}
	}
	if len(choices) == 0 {
		return nil, false
	}
	type m = map[string]any
	out := m{"id": head.ID, "created": head.Created, "model": head.Model}
	if head.SystemFingerprint != nil {
		out["system_fingerprint"] = head.SystemFingerprint
	}
	list := make([]m, 0, len(choices))
	for _, sc := range choices {
		c := m{"index": orNull(sc.index), "logprobs": nil, "finish_reason": orNull(sc.finish)}
		if ep == chatEndpoint {
			msg := m{"role": "assistant"}
			if sc.role != "" {
				msg["role"] = sc.role
			}
			if sc.fields["content"] == nil {
				msg["content"] = ""
			}
			for _, k := range sc.order {
				msg[k] = sc.fields[k].String()
			}
			c["message"] = msg
		} else {
			text := ""
			if b := sc.fields["text"]; b != nil {
				text = b.String()
			}
			c["text"] = text
		}
		list = append(list, c)
	}
	out["choices"] = list
	if ep == chatEndpoint {
		out["object"] = "chat.completion"
	} else {
		out["object"] = "text_completion"
	}
	if u != nil {
		out["usage"] = u
	}
	b, err := json.Marshal(out)
	return b, err == nil
}
