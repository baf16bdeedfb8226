package ratelimit

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"k8s.io/utils/clock"
)

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// Prefix starts every key; default "qwen:rl:".
	Prefix string
	// Timeout bounds every call; default 50ms. It bounds socket reads and writes only when
	// the client was built with ContextTimeoutEnabled (otherwise its ReadTimeout applies).
	Timeout time.Duration
	// UseClientClock decides at the now passed in instead of the Redis server's clock
	// (TIME); for tests only, since gateway clocks disagree.
	UseClientClock bool
	// LeaseTTL is how long an Acquire slot lives if its holder stops renewing it (a crashed
	// gateway); default 10m. A held slot is renewed every LeaseTTL/3, so a stream may last
	// longer than LeaseTTL.
	LeaseTTL time.Duration
	// Clock runs the renewals and the retries of a failed release, and is the client clock of
	// UseClientClock. Default: the real clock.
	Clock clock.WithDelayedExecution
}

// Redis is a Limiter whose state lives in Redis and is shared by every gateway replica:
// one EVALSHA per decision, on the server's clock, every key expiring once idle.
type Redis struct {
	client   redis.UniversalClient
	prefix   string
	timeout  time.Duration
	clientTS bool
	leaseTTL time.Duration
	leaseID  string
	seq      atomic.Uint64
	clock    clock.WithDelayedExecution

	mu     sync.Mutex
	held   int    // leases held or still being released
	onIdle func() // set by CloseWhenIdle
}

var (
	//go:embed lua/decide.lua
	decideSrc    string
	decideScript = redis.NewScript(decideSrc)
	//go:embed lua/acquire.lua
	acquireSrc    string
	acquireScript = redis.NewScript(acquireSrc)
	//go:embed lua/renew.lua
	renewSrc    string
	renewScript = redis.NewScript(renewSrc)
)

var _ Limiter = (*Redis)(nil)

// NewRedis returns a Limiter on client.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.Prefix == "" {
		opts.Prefix = "qwen:rl:"
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
		leaseTTL: opts.LeaseTTL,
		leaseID:  hex.EncodeToString(id[:]) + ":",
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
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	res, err := decideScript.Run(ctx, l.client, []string{l.stateKey(key, &p)},
		"allow", p.alg.tag(), p.limit, p.window, p.burst, n, l.now(now)).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis allow: %w", err)
	}
	if len(res) != 4 {
		return Decision{}, fmt.Errorf("ratelimit: redis allow: unexpected reply %v", res)
	}
	return outcome{ok: res[0] == 1, remaining: res[1], retry: res[2], reset: res[3]}.decision(r.Limit), nil
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
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	err = decideScript.Run(ctx, l.client, []string{l.stateKey(key, &p)},
		"adjust", p.alg.tag(), p.limit, p.window, p.burst, delta, l.now(now)).Err()
	if err != nil {
		return fmt.Errorf("ratelimit: redis adjust: %w", err)
	}
	return nil
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
	zkey := l.prefix + "cc:" + key
	id := l.leaseID + strconv.FormatUint(l.seq.Add(1), 10)
	tctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	got, err := acquireScript.Run(tctx, l.client, []string{zkey}, max, l.leaseTTL.Microseconds(), id, l.now(now)).Int64()
	if err != nil {
		return nil, false, fmt.Errorf("ratelimit: redis acquire: %w", err)
	}
	if got != 1 {
		return nil, false, nil
	}
	ls := &lease{l: l, zkey: zkey, id: id, expires: l.clock.Now().Add(l.leaseTTL)}
	l.mu.Lock()
	l.held++
	l.mu.Unlock()
	ls.mu.Lock()
	ls.timer = l.clock.AfterFunc(l.leaseTTL/3, ls.later(ls.renew))
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

// renew extends the lease and schedules the next renewal, until release.
func (ls *lease) renew() {
	l := ls.l
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	now := l.clock.Now()
	err := renewScript.Run(ctx, l.client, []string{ls.zkey}, l.leaseTTL.Microseconds(), ls.id, l.now(now)).Err()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.released {
		return
	}
	if err == nil {
		ls.expires = now.Add(l.leaseTTL)
	}
	// On an error the next renewal, a third of the TTL later, tries again.
	ls.timer = l.clock.AfterFunc(l.leaseTTL/3, ls.later(ls.renew))
}

// later runs f on its own goroutine: a clock may call its timers' functions while it holds a
// lock that f's own use of the clock would need.
func (ls *lease) later(f func()) func() { return func() { go f() } }

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
	err := l.client.ZRem(ctx, ls.zkey, ls.id).Err()
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
func (l *Redis) now(t time.Time) int64 {
	if l.clientTS {
		return t.UnixMicro()
	}
	return -1
}

// stateKey is prefix + algorithm:limit:window:burst: + key, so a changed rule starts afresh.
func (l *Redis) stateKey(key string, p *params) string {
	b := make([]byte, 0, len(l.prefix)+len(key)+48)
	b = append(b, l.prefix...)
	b = append(b, p.alg.tag()...)
	b = append(b, ':')
	b = strconv.AppendInt(b, p.limit, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, p.window, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, p.burst, 10)
	b = append(b, ':')
	b = append(b, key...)
	return string(b)
}
