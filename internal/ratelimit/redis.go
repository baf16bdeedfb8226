package ratelimit

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"k8s.io/utils/clock"
)

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// Prefix starts every key; default "qwen:rl:". It must not contain '{' or '}' (the
	// hash tag that follows it must be the key's first).
	Prefix string
	// Timeout bounds every call; default 50ms.
	Timeout time.Duration
	// UseClientClock decides at the now passed in instead of the Redis server's clock
	// (TIME); for tests only, since gateway clocks disagree.
	UseClientClock bool
	// LeaseTTL is how long an Acquire slot lives if its holder stops renewing it (a crashed
	// gateway); default 10m. A held slot is renewed every LeaseTTL/3, so a stream may last
	// longer than LeaseTTL.
	LeaseTTL time.Duration
	// Clock runs the renewals and the retries of a failed release, and is the client clock of
	// renewals under UseClientClock. Default: the real clock.
	Clock clock.WithDelayedExecution
}

// FlushDelay is the MaxFlushDelay to give the rueidis client of a Redis limiter: after each
// write of pipelined commands the client waits up to this long to gather the next batch. At
// 64 concurrent callers on 2 cores that cut the client's CPU per decision by a quarter and
// Redis's by a tenth (fewer, larger writes and reads; BenchmarkRedisClient), for at most
// 20 µs more latency.
const FlushDelay = 20 * time.Microsecond

// Redis is a Limiter whose state lives in Redis and is shared by every gateway replica:
// one EVALSHA per decision, on the server's clock, every key expiring once idle. It works
// on a standalone Redis, a Sentinel-managed master and a Redis Cluster alike: the Redis
// keys of one client share a hash tag (see Limiter), so they live in one cluster slot.
//
// The client is a rueidis.Client, which pipelines concurrent calls on a few connections
// automatically: at 64 concurrent callers that is what lets one Redis core decide tens of
// thousands of times a second (BENCHMARKS.md).
type Redis struct {
	client   rueidis.Client
	prefix   string
	timeout  time.Duration
	clientTS bool
	leaseTTL string // µs
	ttl      time.Duration
	leaseID  string
	seq      atomic.Uint64
	workers  chan *call // idle workers receive calls here (see exec)
	clock    clock.WithDelayedExecution

	mu     sync.Mutex
	held   int    // leases held or still being released
	onIdle func() // set by CloseWhenIdle
}

var (
	//go:embed lua/decide.lua
	decideSrc    string
	decideScript = rueidis.NewLuaScript(decideSrc)
	//go:embed lua/acquire.lua
	acquireSrc    string
	acquireScript = rueidis.NewLuaScript(acquireSrc)
	//go:embed lua/renew.lua
	renewSrc    string
	renewScript = rueidis.NewLuaScript(renewSrc)
	//go:embed lua/slidelog.lua
	slideLogSrc    string
	slideLogScript = rueidis.NewLuaScript(slideLogSrc)
)

var _ Limiter = (*Redis)(nil)

// NewRedis returns a Limiter on client. It panics if opts.Prefix contains a brace.
func NewRedis(client rueidis.Client, opts RedisOptions) *Redis {
	if opts.Prefix == "" {
		opts.Prefix = "qwen:rl:"
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		panic(fmt.Sprintf("ratelimit: RedisOptions.Prefix %q contains a brace", opts.Prefix))
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 10 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Redis{
		client:   client,
		prefix:   opts.Prefix,
		timeout:  opts.Timeout,
		clientTS: opts.UseClientClock,
		leaseTTL: strconv.FormatInt(opts.LeaseTTL.Microseconds(), 10),
		ttl:      opts.LeaseTTL,
		leaseID:  hex.EncodeToString(id[:]) + ":",
		workers:  make(chan *call),
		clock:    opts.Clock,
	}
}

// Allow decides whether n units for key fit r at now, consuming them only if allowed.
func (l *Redis) Allow(ctx context.Context, key string, r Rule, n int64, now time.Time) (Decision, error) {
	p, err := r.params()
	if err != nil {
		return Decision{}, err
	}
	if n < 0 {
		return Decision{}, errNegativeN
	}
	wait, err := p.waitTicks(&r)
	if err != nil {
		return Decision{}, err
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	if p.alg == algLog {
		res, err := l.exec(ctx, slideLogScript, l.stateKey(key, &p), l.logArgs("allow", &p, n, now)).AsIntSlice()
		if err != nil {
			return Decision{}, fmt.Errorf("ratelimit: redis allow: %w", err)
		}
		if len(res) != 4 {
			return Decision{}, fmt.Errorf("ratelimit: redis allow: unexpected reply %v", res)
		}
		return outcome{ok: res[0] == 1, remaining: res[1], retry: res[2], reset: res[3]}.decision(r.Limit), nil
	}
	res, err := l.exec(ctx, decideScript, l.stateKey(key, &p), l.args("allow", &p, n, now, wait)).ToString()
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis allow: %w", err)
	}
	if len(res) != 40 {
		return Decision{}, fmt.Errorf("ratelimit: redis allow: unexpected reply %q", res)
	}
	return outcome{ok: unpack(res, 0) == 1, remaining: unpack(res, 1), retry: unpack(res, 2), reset: unpack(res, 3), wait: unpack(res, 4)}.decision(r.Limit), nil
}

// unpack is the i-th little-endian double of b, as an integer (decide.lua's numbers are).
func unpack(b string, i int) int64 {
	return int64(math.Float64frombits(binary.LittleEndian.Uint64([]byte(b[8*i : 8*i+8]))))
}

// Adjust charges (delta>0) or refunds (delta<0) units for key under r at now.
func (l *Redis) Adjust(ctx context.Context, key string, r Rule, delta int64, now time.Time) error {
	p, err := r.params()
	if err != nil {
		return err
	}
	if delta == 0 {
		return nil
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	script, args := decideScript, l.args("adjust", &p, delta, now, 0)
	if p.alg == algLog {
		script, args = slideLogScript, l.logArgs("adjust", &p, delta, now)
	}
	if err := l.exec(ctx, script, l.stateKey(key, &p), args).Error(); err != nil {
		return fmt.Errorf("ratelimit: redis adjust: %w", err)
	}
	return nil
}

// bound returns ctx bounded by Timeout: ctx itself when its deadline is already that near
// (the gateway bounds a request's decisions by the same timeout), saving a timer.
func (l *Redis) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= l.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.timeout)
}

// exec runs script on key and returns by ctx's deadline whatever the client does. rueidis
// bounds a command by its context, except where a caller joins a reconnection in progress or
// a Sentinel client retries on a connection that expired under it: during failovers such
// calls were seen to take twice the timeout. So the call runs on a worker goroutine while
// the caller waits for it or for the deadline; an abandoned call goes on, under the same
// expired context, until the client gives up.
//
// Workers are kept (until idle for a while) rather than started per call: a fresh goroutine
// grows its stack to rueidis's depth every time. The hand-off costs the client about 2 µs of
// CPU per decision (BenchmarkRedisAllowParallel, against calling rueidis directly); a
// goroutine per call cost about 4 µs.
func (l *Redis) exec(ctx context.Context, s *rueidis.Lua, key string, args []string) rueidis.RedisResult {
	c := callPool.Get().(*call)
	c.ctx, c.script, c.keys[0], c.args = ctx, s, key, args
	select {
	case l.workers <- c: // an idle worker takes it
	default:
		go l.work(c)
	}
	select {
	case r := <-c.done:
		*c = call{done: c.done}
		callPool.Put(c)
		return r
	case <-ctx.Done():
		return rueidis.NewErrorResult(ctx.Err()) // c stays with its worker, then the garbage collector
	}
}

// call is one script call handed to a worker.
type call struct {
	ctx    context.Context
	script *rueidis.Lua
	keys   [1]string
	args   []string
	done   chan rueidis.RedisResult // buffered: a worker never waits for an abandoned caller
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan rueidis.RedisResult, 1)} }}

// workerIdle is how long a worker waits for another call before it exits.
const workerIdle = 10 * time.Second

// work runs c, then every call handed to it, until none comes for a whole workerIdle (a
// timer that is not reset per call: that cost more than the rest of the hand-off).
func (l *Redis) work(c *call) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for busy := true; ; {
		if c != nil {
			c.done <- c.script.Exec(c.ctx, l.client, c.keys[:], c.args)
			busy = true
		}
		select {
		case c = <-l.workers:
		case <-idle.C:
			if !busy {
				return
			}
			busy, c = false, nil
			idle.Reset(workerIdle)
		}
	}
}

// args are decide.lua's arguments: the numbers packed as little-endian doubles (exact: every
// one is below 2^53), which Redis unpacks with no string parsing.
func (l *Redis) args(mode string, p *params, n int64, now time.Time, maxWait int64) []string {
	clock := int64(-1)
	if l.clientTS {
		clock = now.UnixMicro()
	}
	var b [56]byte
	for i, v := range [...]int64{p.limit, p.window, p.burst, n, clock, p.tick, maxWait} {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(float64(v)))
	}
	return []string{mode, p.alg.tag(), string(b[:])}
}

// logArgs are slidelog.lua's arguments, with an id no other call uses (the log's members).
func (l *Redis) logArgs(mode string, p *params, n int64, now time.Time) []string {
	id := l.leaseID + strconv.FormatUint(l.seq.Add(1), 10)
	return []string{mode, strconv.FormatInt(p.limit, 10), strconv.FormatInt(p.window, 10), strconv.FormatInt(n, 10),
		l.now(now), strconv.FormatInt(p.tick, 10), id}
}

// Acquire takes one of max concurrent slots for key; ok=false when all are taken. A slot is a
// lease: it is renewed every LeaseTTL/3 while held, so it never expires under a live holder,
// and expires LeaseTTL after its holder stopped renewing it (a crashed gateway). release ends
// the renewals and removes the lease; when Redis cannot be reached it retries in the
// background (1s, 2s, 4s ... apart) for as long as the lease would live, so a slot is not held
// for the lease time after one failed call.
func (l *Redis) Acquire(ctx context.Context, key string, max int64, now time.Time) (release func(), ok bool, err error) {
	if max <= 0 {
		return nil, false, errNonPositive
	}
	zkey := l.leaseKey(key)
	id := l.leaseID + strconv.FormatUint(l.seq.Add(1), 10)
	tctx, cancel := l.bound(ctx)
	defer cancel()
	got, err := l.exec(tctx, acquireScript, zkey, []string{strconv.FormatInt(max, 10), l.leaseTTL, id, l.now(now)}).AsInt64()
	if err != nil {
		return nil, false, fmt.Errorf("ratelimit: redis acquire: %w", err)
	}
	if got != 1 {
		return nil, false, nil
	}
	ls := &lease{l: l, zkey: zkey, id: id, expires: l.clock.Now().Add(l.ttl)}
	l.mu.Lock()
	l.held++
	l.mu.Unlock()
	ls.mu.Lock()
	ls.timer = l.clock.AfterFunc(l.ttl/3, ls.later(ls.renew))
	ls.mu.Unlock()
	return ls.release, true, nil
}

// CloseWhenIdle calls close once no lease of l is held or being released any more (at once
// when none is): a replaced limiter's client stays open for the streams still using it.
func (l *Redis) CloseWhenIdle(close func()) {
	l.mu.Lock()
	if l.held > 0 {
		l.onIdle = close
		close = nil
	}
	l.mu.Unlock()
	if close != nil {
		close()
	}
}

// leaseDone counts a lease out; the last one out of a retiring limiter closes it.
func (l *Redis) leaseDone() {
	l.mu.Lock()
	l.held--
	var idle func()
	if l.held == 0 {
		idle, l.onIdle = l.onIdle, nil
	}
	l.mu.Unlock()
	if idle != nil {
		idle()
	}
}

// lease is one held concurrency slot.
type lease struct {
	l        *Redis
	zkey, id string
	mu       sync.Mutex
	timer    clock.Timer
	released bool
	expires  time.Time     // when Redis drops the lease if it is not renewed (the clock's time)
	backoff  time.Duration // the next release retry's delay
}

// later runs f on its own goroutine: a clock may call its timers' functions while it holds a
// lock that f's own use of the clock would need.
func (ls *lease) later(f func()) func() { return func() { go f() } }

// renew extends the lease and schedules the next renewal, until release.
func (ls *lease) renew() {
	l := ls.l
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	now := l.clock.Now()
	err := l.exec(ctx, renewScript, ls.zkey, []string{l.leaseTTL, ls.id, l.now(now)}).Error()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.released {
		return
	}
	if err == nil {
		ls.expires = now.Add(l.ttl)
	}
	// On an error the next renewal, a third of the TTL later, tries again.
	ls.timer = l.clock.AfterFunc(l.ttl/3, ls.later(ls.renew))
}

// release ends the renewals and removes the lease, retrying in the background on failure.
func (ls *lease) release() {
	ls.mu.Lock()
	if ls.released {
		ls.mu.Unlock()
		return
	}
	ls.released = true
	ls.timer.Stop()
	ls.backoff = time.Second
	ls.mu.Unlock()
	ls.remove()
}

// remove deletes the lease from Redis; on failure it tries again after a backoff, as long as
// the lease has not expired by itself.
func (ls *lease) remove() {
	l := ls.l
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	err := l.client.Do(ctx, l.client.B().Zrem().Key(ls.zkey).Member(ls.id).Build()).Error()
	cancel()
	ls.mu.Lock()
	retry := ls.backoff
	ls.backoff = min(2*ls.backoff, 30*time.Second)
	if err == nil || !l.clock.Now().Add(retry).Before(ls.expires) {
		ls.mu.Unlock()
		l.leaseDone()
		return
	}
	ls.timer = l.clock.AfterFunc(retry, ls.later(ls.remove))
	ls.mu.Unlock()
}

// now is the script's clock argument: -1 selects the server clock.
func (l *Redis) now(t time.Time) string {
	if l.clientTS {
		return strconv.FormatInt(t.UnixMicro(), 10)
	}
	return "-1"
}

// splitKey splits a limiter key "quota:client" at its first ':' into the client, which is
// the Redis hash tag, and the quota. A key without ':', or with nothing on one side of it,
// is all client with the empty quota (which no split key has).
func splitKey(key string) (client, quota string) {
	if q, c, ok := strings.Cut(key, ":"); ok && q != "" && c != "" {
		return c, q
	}
	return key, ""
}

// stateKey is prefix{client}:quota:algorithm:limit:window:burst (window in µs): the client
// is the hash tag (the first braces of the key, since the prefix has none), so every key of
// one client is in one Redis Cluster slot whatever the client contains; the rule is part of
// the key, so a changed rule starts afresh (MaxWait is not part of the rule's state). Parsed
// from the right (a quota has no ':' and the rule has four fields), the key names exactly
// one (key, rule).
func (l *Redis) stateKey(key string, p *params) string {
	client, quota := splitKey(key)
	b := make([]byte, 0, len(l.prefix)+len(key)+52)
	b = append(b, l.prefix...)
	b = append(b, '{')
	b = append(b, client...)
	b = append(b, "}:"...)
	b = append(b, quota...)
	b = append(b, ':')
	b = append(b, p.alg.tag()...)
	b = append(b, ':')
	b = strconv.AppendInt(b, p.limit, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, p.window*p.tick, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, p.burst, 10)
	return string(b)
}

// leaseKey is prefix{client}:quota:cc, the sorted set of Acquire's leases.
func (l *Redis) leaseKey(key string) string {
	client, quota := splitKey(key)
	return l.prefix + "{" + client + "}:" + quota + ":cc"
}
