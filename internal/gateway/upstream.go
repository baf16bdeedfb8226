package gateway

import (
	"context"
	"net"
	"net/http"
	"strings"
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

// newTransport returns the HTTP transport to the upstreams: h1Transport for plain http, an
// http.Transport for https. Responses are never compressed by the gateway (Accept-Encoding is
// left to the engine) so that streams stay unbuffered. resolve maps upstream host:port
// addresses to the address:port dialled instead (see Options.Resolve); nil dials every
// address as it is.
func newTransport(t gatewayconfig.Timeouts, resolve map[string]string) *h1Transport {
	dialer := &net.Dialer{Timeout: t.Connect.Duration, KeepAlive: 30 * time.Second}
	dial := resolvingDialer(resolve, dialer.DialContext)
	const idleTimeout, maxIdlePerHost = 90 * time.Second, 256
	std := &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		ResponseHeaderTimeout: t.ResponseHeader.Duration,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       idleTimeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	return newH1Transport(std, dial, t.ResponseHeader.Duration, idleTimeout, maxIdlePerHost)
}

// dialFunc is the signature of net.Dialer.DialContext.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// resolvingDialer returns dial with the host:port keys of resolve replaced by their values
// (hosts compared case-insensitively), like curl --resolve. Other addresses, and every
// address when resolve is empty, are dialled unchanged. URLs, Host headers and TLS names keep
// the original host: only the connection goes elsewhere.
func resolvingDialer(resolve map[string]string, dial dialFunc) dialFunc {
	if len(resolve) == 0 {
		return dial
	}
	m := make(map[string]string, len(resolve))
	for from, to := range resolve {
		m[strings.ToLower(from)] = to
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := m[strings.ToLower(addr)]; ok {
			addr = to
		}
		return dial(ctx, network, addr)
	}
}
