package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// trust says which X-Forwarded-For entries name the client.
type trust struct {
	proxies []netip.Prefix // the proxies' own addresses (gatewayconfig.Config.TrustedProxies)
	hops    int            // proxies that append to X-Forwarded-For (TrustedHops)
}

// clientIP returns the client's address. It is the connection's peer unless X-Forwarded-For
// is believed: with trust.hops, the hops-th entry from the right (when the peer is one of
// trust.proxies, if any are listed); with only trust.proxies, the right-most entry that is not
// itself a trusted proxy, when the peer is one. A header with too few entries or a malformed
// entry where the client should be gives the peer: nothing to its left can be believed.
func clientIP(r *http.Request, tr trust) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return peer
	}
	if len(tr.proxies) > 0 && !isTrusted(peer, tr.proxies) {
		return peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	if tr.hops > 0 {
		entry, ok := fromRight(xff, tr.hops)
		if a := parseAddr(entry); ok && a.IsValid() {
			return a
		}
		return peer
	}
	if len(tr.proxies) == 0 {
		return peer
	}
	for n := 1; ; n++ {
		entry, ok := fromRight(xff, n)
		if !ok {
			return peer
		}
		a := parseAddr(entry)
		if !a.IsValid() {
			return peer // a malformed hop: trust nothing beyond it
		}
		if !isTrusted(a, tr.proxies) {
			return a
		}
		peer = a
	}
}

// fromRight returns the n-th comma-separated entry (n >= 1) from the right of the header's
// values taken as one list, trimmed, without allocating.
func fromRight(values []string, n int) (string, bool) {
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for {
			j := strings.LastIndexByte(v, ',')
			if n--; n == 0 {
				return strings.TrimSpace(v[j+1:]), true
			}
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	return "", false
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

// maxKeyHeaderBytes bounds the value of a Header key source: a longer value is refused with
// 400, so a client cannot make the limiter hold arbitrarily large keys.
const maxKeyHeaderBytes = 256

// client identifies the caller for limiting.
type client struct {
	// key is the limiter key: "k:<key id>", "ip:<address or IPv6 prefix>" or "h:<hash of the
	// header value>". A header value may be a credential: it never leaves the process.
	key string
	id  string     // the value overrides match: key id, header value, or "" for an IP
	ip  netip.Addr // always set when known
}

// identify returns the client per the key source; without a key id (auth off) or header it
// falls back to the client IP. IPv6 addresses are keyed by their first v6Bits bits. A header
// value longer than maxKeyHeaderBytes is an error; the client returned is then its IP, so the
// refusal still counts against someone.
func identify(src gatewayconfig.KeySource, header string, v6Bits int, r *http.Request, keyID string, tr trust) (client, *apiError) {
	c := client{ip: clientIP(r, tr)}
	ipKey := func() string {
		if c.ip.Is6() && v6Bits < 128 {
			p, _ := c.ip.Prefix(v6Bits)
			return "ip:" + p.String()
		}
		return "ip:" + c.ip.String()
	}
	switch h := r.Header.Get(header); {
	case src == gatewayconfig.KeyAPIKey && keyID != "":
		c.key, c.id = "k:"+keyID, keyID
	case src == gatewayconfig.KeyHeader && len(h) > maxKeyHeaderBytes:
		c.key = ipKey()
		return c, invalidRequest(400, "The "+header+" header identifies the client for rate limiting and may be at most "+
			strconv.Itoa(maxKeyHeaderBytes)+" bytes long.", header, "invalid_header")
	case src == gatewayconfig.KeyHeader && h != "":
		sum := sha256.Sum256([]byte(h))
		c.id, c.key = h, "h:"+base64.RawURLEncoding.EncodeToString(sum[:16])
	default:
		c.key = ipKey()
	}
	return c, nil
}
