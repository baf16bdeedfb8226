package ratelimit

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
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
	// LeaseTTL is how long an Acquire slot lives if never released (a crashed gateway);
	// default 10m, longer than any request.
	LeaseTTL time.Duration
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
}

var (
	//go:embed lua/decide.lua
	decideSrc    string
	decideScript = redis.NewScript(decideSrc)
	//go:embed lua/acquire.lua
	acquireSrc    string
	acquireScript = redis.NewScript(acquireSrc)
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
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Redis{
		client:   client,
		prefix:   opts.Prefix,
		timeout:  opts.Timeout,
		clientTS: opts.UseClientClock,
		leaseTTL: opts.LeaseTTL,
		leaseID:  hex.EncodeToString(id[:]) + ":",
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

// Acquire takes one of max concurrent slots for key; ok=false when all are taken. A slot
// is a lease that expires after LeaseTTL if release is never called or fails.
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
	var done atomic.Bool
	detached := context.WithoutCancel(ctx)
	return func() {
		if done.Swap(true) {
			return
		}
		rctx, cancel := context.WithTimeout(detached, l.timeout)
		defer cancel()
		_ = l.client.ZRem(rctx, zkey, id).Err() // on failure the lease expires after LeaseTTL
	}, true, nil
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
