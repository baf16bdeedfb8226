package gateway

import (
	"net"
	"net/http"
	"time"

	"github.com/qwenops/qwen-operator/internal/gateway/breaker"
	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// upstream is an engine the gateway proxies to, with its circuit breaker.
type upstream struct {
	name    string
	baseURL string
	model   string
	breaker *breaker.Breaker
}

// newTransport returns the HTTP transport to the upstreams. Responses are never compressed
// by the gateway (Accept-Encoding is left to the engine) so that streams stay unbuffered.
func newTransport(t gatewayconfig.Timeouts) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: t.Connect.Duration, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: t.ResponseHeader.Duration,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}
