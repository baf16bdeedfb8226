package telemetry

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

// DefaultTimeout bounds one query when New is given no timeout.
const DefaultTimeout = 10 * time.Second

// Client queries one Prometheus. It is safe for concurrent use.
type Client struct {
	api     promv1.API
	timeout time.Duration
}

// Access is how to reach one Prometheus-compatible query API: its URL and the credentials it
// asks for, resolved (the controllers read them from Secrets and ConfigMaps).
type Access struct {
	// URL of the HTTP API, such as https://thanos-querier.openshift-monitoring.svc:9091.
	URL string
	// AuthType (default Bearer) and Credentials make an Authorization header.
	AuthType, Credentials string
	// Username and Password are sent with HTTP basic auth.
	Username, Password string
	// CA is a PEM bundle the server's certificate must chain to, instead of the system roots.
	CA string
	// ServerName is the name the certificate is verified for, when not the URL's host.
	ServerName string
	// InsecureSkipVerify accepts any certificate.
	InsecureSkipVerify bool
}

// Key identifies the Access without holding its secrets: equal Accesses have equal keys.
func (a Access) Key() string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%q", []any{a.URL, a.AuthType, a.Credentials, a.Username, a.Password, a.CA, a.ServerName, a.InsecureSkipVerify}))
	return a.URL + "#" + hex.EncodeToString(sum[:8])
}

// httpConfig is a's client configuration in Prometheus' own terms, which build and check it.
func (a Access) httpConfig() config.HTTPClientConfig {
	c := config.HTTPClientConfig{
		TLSConfig:       config.TLSConfig{CA: a.CA, ServerName: a.ServerName, InsecureSkipVerify: a.InsecureSkipVerify},
		FollowRedirects: true,
		EnableHTTP2:     true,
	}
	if a.Credentials != "" {
		c.Authorization = &config.Authorization{Type: cmp.Or(a.AuthType, "Bearer"), Credentials: config.Secret(a.Credentials)}
	}
	if a.Username != "" || a.Password != "" {
		c.BasicAuth = &config.BasicAuth{Username: a.Username, Password: config.Secret(a.Password)}
	}
	return c
}

// New returns a client of the Prometheus HTTP API a names (such as
// http://prometheus.monitoring:9090), sending its credentials. Each query is bounded by
// timeout, both on the wire and as Prometheus's own evaluation timeout; 0 means
// DefaultTimeout. A URL that is not absolute http(s) is ErrInvalidURL; credentials that cannot
// be used (both authorization and basic auth, a CA that is not PEM) are ErrInvalidConnection.
func New(a Access, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w %q: want an absolute http(s) URL such as http://prometheus.monitoring:9090", ErrInvalidURL, a.URL)
	}
	hc := a.httpConfig()
	if err := hc.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConnection, err)
	}
	rt, err := config.NewRoundTripperFromConfig(hc, "qwen-operator")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConnection, err)
	}
	c, err := api.NewClient(api.Config{Address: a.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidURL, a.URL, err)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{api: promv1.NewAPI(c), timeout: timeout}, nil
}

// Query evaluates a trigger's signal for the target at the instant at (zero: Prometheus's
// now) and returns its value. Errors wrap ErrNoData, ErrBadQuery or ErrUnavailable and name
// the signal.
func (c *Client) Query(ctx context.Context, tr v1alpha1.Trigger, t Target, at time.Time) (float64, error) {
	expr, err := Expr(tr, t)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", tr.Signal, err)
	}
	v, err := c.eval(ctx, expr, at)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", tr.Signal, err)
	}
	return v, nil
}

// eval runs an instant query that must yield one number.
func (c *Client) eval(ctx context.Context, expr string, at time.Time) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, _, _, err := c.api.Query(ctx, expr, at, promv1.WithTimeout(c.timeout))
	if err != nil {
		return 0, classify(err, expr)
	}
	var v float64
	switch r := res.(type) {
	case model.Vector:
		switch len(r) {
		case 0:
			return 0, fmt.Errorf("%w: the query returned no series (query: %s)", ErrNoData, expr)
		case 1:
			v = float64(r[0].Value)
		default:
			return 0, fmt.Errorf("%w: the query returned %d series, it must return one number; aggregate it with max(), sum() or avg() (query: %s)", ErrBadQuery, len(r), expr)
		}
	case *model.Scalar:
		v = float64(r.Value)
	default:
		return 0, fmt.Errorf("%w: the query returned a %s, it must return one number (query: %s)", ErrBadQuery, res.Type(), expr)
	}
	if math.IsNaN(v) {
		return 0, fmt.Errorf("%w: the query returned NaN, nothing to compute from (e.g. no traffic) (query: %s)", ErrNoData, expr)
	}
	return v, nil
}

// classify turns a client_golang error into ours. Prometheus answers a query it cannot run
// with 400 bad_data or 422 execution, whose message (its own, bounded) names the problem; 401
// and 403 (from Prometheus' web config, or the kube-rbac-proxy or oauth-proxy in front of
// Thanos Querier) refuse the credentials; anything else (transport errors, deadlines, 503
// timeouts, other HTTP statuses, unparsable bodies) means it could not be asked. A response
// body is never copied into the error: the error ends up in a status that whoever can read the
// plan can read, and the URL may not be a Prometheus at all.
func classify(err error, expr string) error {
	var pe *promv1.Error
	if errors.As(err, &pe) && (pe.Type == promv1.ErrBadData || pe.Type == promv1.ErrExec) {
		return fmt.Errorf("%w: %s (query: %s)", ErrBadQuery, printable(pe.Msg, 512), expr)
	}
	if errors.As(err, &pe) && pe.Type == promv1.ErrClient && (pe.Msg == "client error: 401" || pe.Msg == "client error: 403") {
		return fmt.Errorf("%w: %w: %s", ErrUnavailable, ErrUnauthorized, pe.Msg)
	}
	if uerr := new(url.Error); errors.As(err, &uerr) && isCertificateError(uerr.Err) {
		return fmt.Errorf("%w: %w: %v", ErrUnavailable, ErrUntrusted, err)
	}
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %s: %s", ErrUnavailable, pe.Type, printable(pe.Msg, 200))
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// printable is s with control characters dropped, cut to n bytes.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// Allowed reports whether rawURL may be queried under an allow-list of Prometheus URLs: an
// empty list allows every URL; otherwise its scheme and host (with port) must be those of an
// entry. It returns nil or an error wrapping ErrURLNotAllowed.
func Allowed(rawURL string, allowed []string) error {
	if len(allowed) == 0 {
		return nil
	}
	u, err := url.Parse(rawURL)
	if err == nil {
		for _, a := range allowed {
			if au, err := url.Parse(a); err == nil && strings.EqualFold(au.Scheme, u.Scheme) && strings.EqualFold(au.Host, u.Host) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %q", ErrURLNotAllowed, rawURL)
}

// isCertificateError reports whether a TLS handshake failed on the server's certificate.
func isCertificateError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}
