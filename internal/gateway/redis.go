package gateway

import (
	"crypto/tls"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// newRedisClient connects to the limiter's Redis. Every timeout is the limiter's backend
// timeout and commands are not retried, so that an unreachable Redis costs a request at most
// that long before FailOpen or FailClosed applies.
func newRedisClient(c *gatewayconfig.Redis, timeout time.Duration) (*redis.Client, error) {
	opts := &redis.Options{
		Addr:                  c.Address,
		Password:              os.Getenv(c.PasswordEnv),
		DialTimeout:           timeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		PoolTimeout:           timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DisableIdentity:       true, // no CLIENT SETINFO round trip on connect
	}
	if c.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewClient(opts), nil
}
