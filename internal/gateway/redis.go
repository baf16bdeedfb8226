package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
	"github.com/qwenops/qwen-operator/internal/ratelimit"
)

// redisClientOption is the rueidis configuration of the limiter's Redis: a standalone
// server, a master found through Sentinel, or a Redis Cluster. Dials are bounded by the
// limiter's backend timeout (every call is, by its context) and commands are not retried, so
// that an unreachable Redis costs a request at most that long before FailOpen or FailClosed
// applies. Client-side caching is off: the limiter never reads a key twice. Concurrent
// decisions are pipelined, gathered for up to ratelimit.FlushDelay.
func redisClientOption(c *gatewayconfig.Redis, timeout time.Duration) (rueidis.ClientOption, error) {
	dialer := net.Dialer{Timeout: timeout}
	opt := rueidis.ClientOption{
		Password:      os.Getenv(c.PasswordEnv),
		Dialer:        dialer,
		DisableCache:  true,
		DisableRetry:  true,
		MaxFlushDelay: ratelimit.FlushDelay,
	}
	if c.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return opt, fmt.Errorf("caFile: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return opt, fmt.Errorf("caFile %s: no PEM certificate in it", c.CAFile)
			}
		}
		opt.TLSConfig = tc
	}
	switch {
	case c.Sentinel != nil:
		opt.InitAddress = append([]string(nil), c.Sentinel.Addresses...)
		opt.Sentinel = rueidis.SentinelOption{
			MasterSet: c.Sentinel.MasterName,
			Dialer:    dialer,
			TLSConfig: opt.TLSConfig,
			// follows a failover even if its +switch-master event was missed
			TopologyRefreshInterval: 5 * time.Second,
		}
		if c.Sentinel.PasswordEnv != "" {
			opt.Sentinel.Password = os.Getenv(c.Sentinel.PasswordEnv)
		}
	case c.Cluster != nil:
		opt.InitAddress = append([]string(nil), c.Cluster.Addresses...)
		opt.ClusterOption.ShardsRefreshInterval = 5 * time.Second
	default:
		opt.InitAddress = []string{c.Address}
		opt.ForceSingleClient = true
	}
	return opt, nil
}

// errRedisNotConnected is a limiter call's error while the first connection is pending.
var errRedisNotConnected = errors.New("redis: not connected yet")

// redisLimiter is a ratelimit.Redis whose client is connected in the background. A rueidis
// client connects when it is built, and fails to build while Redis is unreachable; the
// gateway must start, and decide by its failure mode, whatever Redis's state. Until the
// first connection succeeds every call fails at once; after it, the client reconnects by
// itself (and follows failovers and resharding).
type redisLimiter struct {
	opt  rueidis.ClientOption
	ro   ratelimit.RedisOptions
	log  *slog.Logger
	stop chan struct{}
	// first is closed when the first connection attempt has finished, either way.
	first chan struct{}

	mu      sync.Mutex
	lim     *ratelimit.Redis
	client  rueidis.Client
	lastErr error
	closed  bool
}

// redisRetryMax bounds the wait between two connection attempts.
const redisRetryMax = time.Second

func newRedisLimiter(opt rueidis.ClientOption, ro ratelimit.RedisOptions, log *slog.Logger) *redisLimiter {
	l := &redisLimiter{opt: opt, ro: ro, log: log, stop: make(chan struct{}), first: make(chan struct{})}
	go l.connect()
	return l
}

// connect builds the client, retrying with a doubling pause up to redisRetryMax until it
// succeeds or the limiter is closed.
func (l *redisLimiter) connect() {
	wait := 10 * time.Millisecond
	for attempt := 0; ; attempt++ {
		c, err := rueidis.NewClient(l.opt)
		l.mu.Lock()
		switch {
		case l.closed:
			if err == nil {
				c.Close()
			}
		case err == nil:
			l.client, l.lim = c, ratelimit.NewRedis(c, l.ro)
		default:
			l.lastErr = err
		}
		done := l.closed || err == nil
		l.mu.Unlock()
		if attempt == 0 {
			close(l.first)
		}
		if done {
			if err == nil {
				l.log.Info("connected to the limiter's Redis", "addresses", l.opt.InitAddress)
			}
			return
		}
		if attempt == 0 {
			l.log.Warn("cannot reach the limiter's Redis; retrying, the failure mode applies meanwhile", "addresses", l.opt.InitAddress, "err", err)
		}
		select {
		case <-l.stop:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, redisRetryMax)
	}
}

// waitFirst waits until the first connection attempt has finished, or d has passed.
func (l *redisLimiter) waitFirst(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.first:
	case <-t.C:
	}
}

func (l *redisLimiter) get() (*ratelimit.Redis, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim == nil {
		if l.lastErr != nil {
			return nil, fmt.Errorf("%w: %v", errRedisNotConnected, l.lastErr)
		}
		return nil, errRedisNotConnected
	}
	return l.lim, nil
}

func (l *redisLimiter) Allow(ctx context.Context, key string, r ratelimit.Rule, n int64, now time.Time) (ratelimit.Decision, error) {
	lim, err := l.get()
	if err != nil {
		return ratelimit.Decision{}, err
	}
	return lim.Allow(ctx, key, r, n, now)
}

func (l *redisLimiter) Adjust(ctx context.Context, key string, r ratelimit.Rule, delta int64, now time.Time) error {
	lim, err := l.get()
	if err != nil {
		return err
	}
	return lim.Adjust(ctx, key, r, delta, now)
}

func (l *redisLimiter) Acquire(ctx context.Context, key string, max int64, now time.Time) (func(), bool, error) {
	lim, err := l.get()
	if err != nil {
		return nil, false, err
	}
	return lim.Acquire(ctx, key, max, now)
}

// Close stops connecting and closes the client.
func (l *redisLimiter) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	close(l.stop)
	if l.client != nil {
		l.client.Close()
	}
}

// CloseWhenIdle closes the limiter once no concurrency slot taken through it is held or being
// released any more (at once when none is, or when it never connected).
func (l *redisLimiter) CloseWhenIdle() {
	l.mu.Lock()
	lim := l.lim
	l.mu.Unlock()
	if lim == nil {
		l.Close()
		return
	}
	lim.CloseWhenIdle(l.Close)
}
