package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// clientIP returns the client's address: the connection's peer, or, when the peer is a trusted
// proxy, the right-most X-Forwarded-For entry that is not itself a trusted proxy.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a := parseAddr(strings.TrimSpace(parts[j]))
			if !a.IsValid() {
				return peer // a malformed hop: trust nothing beyond it
			}
			if !isTrusted(a, trusted) {
				return a
			}
			peer = a
		}
	}
	return peer
}

func parseAddr(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// client identifies the caller for limiting.
type client struct {
	key string     // the limiter key: "k:<key id>", "ip:<addr>" or "h:<header value>"
	id  string     // the value overrides match: key id, header value, or "" for an IP
	ip  netip.Addr // always set when known
}

// identify returns the client per the key source; without a key id (auth off) or header it
// falls back to the client IP.
func identify(src gatewayconfig.KeySource, header string, r *http.Request, keyID string, trusted []netip.Prefix) client {
	c := client{ip: clientIP(r, trusted)}
	switch {
	case src == gatewayconfig.KeyAPIKey && keyID != "":
		c.key, c.id = "k:"+keyID, keyID
	case src == gatewayconfig.KeyHeader && r.Header.Get(header) != "":
		c.id = r.Header.Get(header)
		c.key = "h:" + c.id
	default:
		c.key = "ip:" + c.ip.String()
	}
	return c
}
