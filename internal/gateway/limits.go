package gateway

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"strings"
	"time"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
	"github.com/qwenops/qwen-operator/internal/ratelimit"
)

// limiter is the part of internal/ratelimit the gateway uses (Memory and Redis implement it).
type limiter interface {
	Allow(ctx context.Context, key string, r ratelimit.Rule, n int64, now time.Time) (ratelimit.Decision, error)
	Adjust(ctx context.Context, key string, r ratelimit.Rule, delta int64, now time.Time) error
	Acquire(ctx context.Context, key string, max int64, now time.Time) (release func(), ok bool, err error)
}

// overChecker is a limiter that knows, without asking its backend, some quotas that are
// over (ratelimit.OverLimitCache in front of Redis).
type overChecker interface {
	Over(key string, r ratelimit.Rule, n int64, now time.Time) (ratelimit.Decision, bool)
}

// quotaKind is what a quota counts; its name is the rate_limited_total reason.
type quotaKind int

const (
	kindRequests quotaKind = iota
	kindTokens
	kindInputTokens
	kindOutputTokens
	kindConcurrency
)

var kindNames = [...]string{"requests", "tokens", "input_tokens", "output_tokens", "concurrency"}

func (k quotaKind) String() string { return kindNames[k] }

var kindFields = [...]string{"requestsPerMinute", "tokensPerMinute", "inputTokensPerMinute", "outputTokensPerMinute", "maxConcurrentRequests"}

// field is the gatewayconfig.Limits field that sets a quota of this kind.
func (k quotaKind) field() string { return kindFields[k] }

// count is how much of a quota of this kind a request uses, from its prompt and completion
// tokens (estimated before it runs, reported after): 1 for the request quota, the tokens it
// counts for a token quota. It is the one place a kind says what it counts.
func (k quotaKind) count(prompt, completion int64) int64 {
	switch k {
	case kindRequests:
		return 1
	case kindTokens:
		return prompt + completion
	case kindInputTokens:
		return prompt
	case kindOutputTokens:
		return completion
	}
	return 0
}

// reasonUnavailable is the rate_limited_total reason of a FailClosed rejection.
const reasonUnavailable = "limiter_unavailable"

// budgetWindow is the window of a quota: a minute, or an hour or a day for budgets.
type budgetWindow struct {
	window      time.Duration
	name, title string
}

var (
	perMinute = budgetWindow{time.Minute, "minute", "Minute"}
	perHour   = budgetWindow{time.Hour, "hour", "Hour"}
	perDay    = budgetWindow{24 * time.Hour, "day", "Day"}
)

// budgetReasons are the rate_limited_total reasons of the hourly and daily budgets.
var budgetReasons = []string{"requests_per_hour", "requests_per_day", "tokens_per_hour", "tokens_per_day"}

// quota is one limit of a tier: per minute, or an hourly or daily budget.
type quota struct {
	kind   quotaKind
	rule   ratelimit.Rule
	per    string // the window's name: minute, hour or day
	reason string // the rate_limited_total reason: the kind, with _per_hour or _per_day for budgets
	field  string // the gatewayconfig.Limits field that sets it
	prefix string // state key prefix (the limiter adds the rule, so a changed limit starts fresh)
	item   string // the RateLimit header item name
}

// tier is a set of limits: the base limits or an override's.
type tier struct {
	name          string
	class         class // the criticality of its requests
	quotas        []quota
	maxConcurrent int64
	concPrefix    string
	concItem      string // the RateLimit header item name of the concurrency quota
	policyHeader  string // RateLimit-Policy value
	headers       quotaHeaders
}

type override struct {
	t        *tier
	ids      map[string]bool
	prefixes []netip.Prefix
}

// policy is a compiled gatewayconfig.RateLimit bound to a limiter backend.
type policy struct {
	name       string
	shadow     bool
	failClosed bool
	timeout    time.Duration
	source     gatewayconfig.KeySource
	header     string
	v6Bits     int   // leading bits of an IPv6 address that make its key
	assumed    int64 // max_tokens charged per choice for a request that sets none
	base       *tier
	overrides  []override
	queue      *fairQueue // LeakyBucket with a queue; nil: refuse at once
	// classHeader is the header a trusted proxy may name a request's class in ("": none).
	classHeader string
	lim         limiter // set by the caller
}

// newPolicy compiles rl. Every rule must be one the limiters can hold (see
// ratelimit.Rule.Validate): a policy they would refuse at every decision is refused here, so
// the config carrying it is rejected and the last good one keeps serving.
func newPolicy(rl *gatewayconfig.RateLimit) (*policy, error) {
	divisor := int64(1)
	if rl.Redis == nil && rl.Replicas > 1 {
		divisor = int64(rl.Replicas)
	}
	p := &policy{
		name:       rl.Policy,
		shadow:     rl.Mode == gatewayconfig.ModeShadow,
		failClosed: rl.FailureMode == gatewayconfig.FailClosed,
		timeout:    rl.BackendTimeout.Duration,
		source:     rl.Key.Source,
		header:     rl.Key.Header,
		v6Bits:     int(rl.Key.IPv6PrefixLength),
		assumed:    rl.AssumedMaxTokens,
	}
	var maxWait time.Duration
	if q := rl.Queue; q != nil && !p.shadow { // Shadow mode delays no one: it notes each request that would have waited
		maxWait, p.queue = q.MaxWait.Duration, newFairQueue(q.MaxQueued)
	}
	p.classHeader = rl.CriticalityHeader
	p.base = newTier("", rl.Policy, ratelimit.Algorithm(rl.Algorithm), rl.Limits, divisor, maxWait)
	p.base.class = classOf(rl.Criticality, classStandard)
	if err := p.base.validate("rateLimit.limits"); err != nil {
		return nil, err
	}
	for i, o := range rl.Overrides {
		ov := override{ids: map[string]bool{}}
		ov.t = newTier(o.Name, rl.Policy, ratelimit.Algorithm(rl.Algorithm), o.Limits, divisor, maxWait)
		ov.t.class = classOf(o.Criticality, p.base.class)
		if err := ov.t.validate(fmt.Sprintf("rateLimit.overrides[%d].limits", i)); err != nil {
			return nil, err
		}
		for _, k := range o.Keys {
			if rl.Key.Source == gatewayconfig.KeyClientIP {
				if pr, err := gatewayconfig.ParsePrefix(k); err == nil {
					ov.prefixes = append(ov.prefixes, pr)
				}
				continue
			}
			ov.ids[k] = true
		}
		p.overrides = append(p.overrides, ov)
	}
	return p, nil
}

// validate reports the first quota whose rule the limiters cannot hold, naming its field.
func (t *tier) validate(path string) error {
	for _, q := range t.quotas {
		if err := q.rule.Validate(); err != nil {
			return fmt.Errorf("%s.%s: %w", path, q.field, err)
		}
	}
	return nil
}

// split divides a limit among local replicas, never below 1 (0 stays unlimited).
func split(limit, divisor int64) int64 {
	if limit <= 0 {
		return 0
	}
	return max(limit/divisor, 1)
}

// newTier builds the quotas of one tier. Requests use the policy's algorithm (a LeakyBucket
// queues up to maxWait); token quotas use a 60 s sliding window, which matches "tokens per
// minute" and supports the true-up.
func newTier(name, policyName string, alg ratelimit.Algorithm, l gatewayconfig.Limits, divisor int64, maxWait time.Duration) *tier {
	t := &tier{name: name, maxConcurrent: split(l.MaxConcurrentRequests, divisor)}
	item := policyName
	if name != "" {
		item += "-" + name
	}
	add := func(kind quotaKind, a ratelimit.Algorithm, limit, burst int64, per budgetWindow) {
		if limit = split(limit, divisor); limit == 0 {
			return
		}
		if burst = split(burst, divisor); burst == 0 {
			burst = limit
		}
		q := quota{kind: kind, rule: ratelimit.Rule{Algorithm: a, Limit: limit, Window: per.window, Burst: burst},
			per: per.name, reason: kind.String(), field: kind.field()}
		q.item = item
		if kind != kindRequests {
			q.item += "-" + kind.String()
		}
		if per.window != time.Minute {
			q.reason += "_per_" + per.name
			q.field = strings.TrimSuffix(q.field, "PerMinute") + "Per" + per.title
			q.item += "-per-" + per.name
		}
		q.prefix = strings.ReplaceAll(q.reason, "_", "-") + ":"
		t.quotas = append(t.quotas, q)
	}
	add(kindRequests, alg, l.RequestsPerMinute, l.Burst, perMinute)
	if len(t.quotas) > 0 && t.quotas[0].kind == kindRequests {
		t.quotas[0].rule.MaxWait = maxWait
	}
	add(kindTokens, ratelimit.SlidingWindow, l.TokensPerMinute, 0, perMinute)
	add(kindInputTokens, ratelimit.SlidingWindow, l.InputTokensPerMinute, 0, perMinute)
	add(kindOutputTokens, ratelimit.SlidingWindow, l.OutputTokensPerMinute, 0, perMinute)
	// Budgets beyond a minute: sliding-window counters of an hour and a day.
	add(kindRequests, ratelimit.SlidingWindow, l.RequestsPerHour, 0, perHour)
	add(kindRequests, ratelimit.SlidingWindow, l.RequestsPerDay, 0, perDay)
	add(kindTokens, ratelimit.SlidingWindow, l.TokensPerHour, 0, perHour)
	add(kindTokens, ratelimit.SlidingWindow, l.TokensPerDay, 0, perDay)
	if t.maxConcurrent > 0 {
		t.concPrefix = kindConcurrency.String() + ":"
		t.concItem = item + "-concurrency"
	}
	t.policyHeader = policyHeader(t)
	t.headers = newQuotaHeaders(t)
	return t
}

// tierFor returns the tier of a client: the first override listing it, else the base.
func (p *policy) tierFor(c client) *tier {
	for _, o := range p.overrides {
		if c.id != "" && o.ids[c.id] {
			return o.t
		}
		if c.id == "" && c.ip.IsValid() && isTrusted(c.ip, o.prefixes) {
			return o.t
		}
	}
	return p.base
}

// estimate returns what a request is charged for a quota before it runs: 1 for requests; for
// tokens the prompt estimate plus the most it may generate, at least 1 and at most the limit
// (so that a large max_tokens can still pass when the window is empty; the true-up charges
// what was really used). The most it may generate is max_tokens (or assumed, when the request
// sets none) for each of the max(n, best_of) choices the engine generates.
func estimate(k quotaKind, req *request, assumed, limit int64) int64 {
	if k == kindRequests {
		return 1
	}
	perChoice := req.maxTokens
	if perChoice == 0 && !req.embeds {
		perChoice = assumed
	}
	completion := min(mulSat(perChoice, req.choices), limit)
	return min(max(k.count(req.promptTokens, completion), 1), limit)
}

// mulSat is a×b for a, b >= 0, saturated at the largest int64.
func mulSat(a, b int64) int64 {
	if hi, lo := bits.Mul64(uint64(a), uint64(b)); hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return a * b
}

// charge is a quota the request was charged for.
type charge struct {
	q *quota
	n int64
}

// admission is an admitted request's hold on its limits, and the decisions its quota
// headers show.
type admission struct {
	p       *policy
	key     string
	tier    *tier
	charged []charge
	release func()
	view    quotaView
	// wait is how long a LeakyBucket queue holds the request before it may go (0: none).
	wait time.Duration
}

// rejection says why a request is refused.
type rejection struct {
	reason string
	t      *tier
	q      int // index of the quota in t.quotas; -1 for concurrency and limiter_unavailable
	d      ratelimit.Decision
}

// admit checks every quota of the client's tier and takes a concurrency slot. All backend
// calls of one request share one BackendTimeout. Every quota is decided: a backend error on
// one of them rejects the request at once with FailClosed, and with FailOpen admits on that
// quota alone while the others are still checked (and charged, and reported). Shadow mode notes
// what it would reject and admits. The limits the request was over and the backend errors are
// noted in rec.
func (p *policy) admit(ctx context.Context, c client, req *request, now time.Time, rec *record) (*admission, *rejection) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	t := p.tierFor(c)
	a := &admission{p: p, key: c.key, tier: t, view: quotaView{t: t}}
	if oc, ok := p.lim.(overChecker); ok && !p.shadow {
		// A quota this gateway already knows to be over rejects before any backend call
		// (nothing to charge, nothing to refund): a flood from one client costs Redis nothing.
		for i := range t.quotas {
			q := &t.quotas[i]
			if d, over := oc.Over(q.prefix+c.key, q.rule, estimate(q.kind, req, p.assumed, q.rule.Limit), now); over {
				return nil, p.over(a, &rejection{reason: q.reason, t: t, q: i, d: d}, now, rec)
			}
		}
	}
	for i := range t.quotas {
		q := &t.quotas[i]
		n := estimate(q.kind, req, p.assumed, q.rule.Limit)
		d, err := p.lim.Allow(ctx, q.prefix+c.key, q.rule, n, now)
		switch {
		case err != nil:
			if rej := p.backendFailed(ctx, a, t, now, rec); rej != nil {
				return nil, rej
			}
		case !d.Allowed:
			if rej := p.over(a, &rejection{reason: q.reason, t: t, q: i, d: d}, now, rec); rej != nil {
				return nil, rej
			}
			a.view.set(i, d) // Shadow mode: the headers say what Enforce would have
		default:
			a.charged = append(a.charged, charge{q, n})
			a.view.set(i, d)
			if !p.shadow { // Shadow mode never holds a request back
				a.wait = max(a.wait, d.Wait)
			}
		}
	}
	if t.maxConcurrent > 0 {
		release, ok, err := p.lim.Acquire(ctx, t.concPrefix+c.key, t.maxConcurrent, now)
		switch {
		case err != nil:
			if rej := p.backendFailed(ctx, a, t, now, rec); rej != nil {
				return nil, rej
			}
		case !ok:
			d := ratelimit.Decision{Limit: t.maxConcurrent, RetryAfter: time.Second, Reset: time.Second}
			if rej := p.over(a, &rejection{reason: kindConcurrency.String(), t: t, q: -1, d: d}, now, rec); rej != nil {
				return nil, rej
			}
		default:
			a.release = release
		}
	}
	return a, nil
}

// bound gives the backend calls of one decision their shared BackendTimeout. The in-process
// limiter never waits, so it goes without (a timer per request is a measurable share of a
// request's cost).
func (p *policy) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, local := p.lim.(*ratelimit.Memory); local {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, p.timeout)
}

// countRefused charges a request the gateway refuses before admission (a bad body, an unknown
// model, a body too large or too slow) to the client's request quotas, so a flood of bad
// requests is limited like any other. It returns the rejection to answer instead when the
// client is over its request limit (Enforce mode), else the decisions for the refusal's quota
// headers. Backend errors are noted and ignored: the request is refused either way.
func (p *policy) countRefused(ctx context.Context, c client, now time.Time, rec *record) (quotaView, *rejection) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	t := p.tierFor(c)
	v := quotaView{t: t}
	for i := range t.quotas {
		q := &t.quotas[i]
		if q.kind != kindRequests {
			continue
		}
		d, err := p.lim.Allow(ctx, q.prefix+c.key, q.rule, 1, now)
		switch {
		case err != nil:
			rec.limiterErrors++
		case !d.Allowed:
			if rej := p.over(&admission{p: p, key: c.key}, &rejection{reason: q.reason, t: t, q: i, d: d}, now, rec); rej != nil {
				return v, rej
			}
			v.set(i, d)
		default:
			v.set(i, d)
		}
	}
	return v, nil
}

func (p *policy) backendFailed(ctx context.Context, a *admission, t *tier, now time.Time, rec *record) *rejection {
	rec.limiterErrors++
	if !p.failClosed {
		return nil
	}
	rej := &rejection{reason: reasonUnavailable, t: t, q: -1, d: ratelimit.Decision{RetryAfter: time.Second, Reset: time.Second}}
	return p.over(a, rej, now, rec)
}

// over handles a limit the request is over: in Shadow mode it only notes it and returns nil;
// in Enforce mode it refunds what the request was already charged and returns rej.
func (p *policy) over(a *admission, rej *rejection, now time.Time, rec *record) *rejection {
	rec.overLimits, rec.mode = append(rec.overLimits, rej.reason), string(gatewayconfig.ModeEnforce)
	if p.shadow {
		rec.mode = string(gatewayconfig.ModeShadow)
		return nil
	}
	p.refund(a, now)
	return rej
}

// refund gives back what an admission was charged. It gets a backend timeout of its own: the
// decision's may be spent (the call that failed used it up), and a refund that is not made is
// a charge the client never used. (A refund that fails anyway is not counted as a backend
// error: those count the decisions' calls.)
func (p *policy) refund(a *admission, now time.Time) {
	if len(a.charged) == 0 {
		return
	}
	ctx, cancel := p.bound(context.Background())
	defer cancel()
	for _, c := range a.charged {
		_ = p.lim.Adjust(ctx, c.q.prefix+a.key, c.q.rule, -c.n, now)
	}
	a.charged = nil
}

// finish trues the token quotas up to the usage the response reported (nil: unknown, the
// estimate stands), then releases the concurrency slot (last: the limiter of a replaced Redis
// client stays open while slots are held). Backend errors are noted in rec.
func (a *admission) finish(u *usage, now time.Time, rec *record) {
	if a == nil {
		return
	}
	if a.release != nil {
		defer a.release()
	}
	if u == nil {
		return
	}
	var ctx context.Context
	var cancel context.CancelFunc
	for _, c := range a.charged {
		if c.q.kind == kindRequests { // a request is a request, whatever the usage
			continue
		}
		if delta := c.q.kind.count(u.PromptTokens, u.CompletionTokens) - c.n; delta != 0 {
			if ctx == nil {
				ctx, cancel = a.p.bound(context.Background())
				defer cancel()
			}
			if err := a.p.lim.Adjust(ctx, c.q.prefix+a.key, c.q.rule, delta, now); err != nil {
				rec.limiterErrors++
			}
		}
	}
}
