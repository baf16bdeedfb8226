package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
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

// New returns a client of the Prometheus HTTP API at url (such as
// http://prometheus.monitoring:9090). Each query is bounded by timeout, both on the wire and
// as Prometheus's own evaluation timeout; 0 means DefaultTimeout.
func New(rawURL string, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w %q: want an absolute http(s) URL such as http://prometheus.monitoring:9090", ErrInvalidURL, rawURL)
	}
	c, err := api.NewClient(api.Config{Address: rawURL})
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidURL, rawURL, err)
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
// with 400 bad_data or 422 execution, whose message (its own, bounded) names the problem;
// anything else (transport errors, deadlines, 503 timeouts, other HTTP statuses, unparsable
// bodies) means it could not be asked. A response body is never copied into the error: the
// error ends up in a status that whoever can read the plan can read, and the URL may not be a
// Prometheus at all.
func classify(err error, expr string) error {
	var pe *promv1.Error
	if errors.As(err, &pe) && (pe.Type == promv1.ErrBadData || pe.Type == promv1.ErrExec) {
		return fmt.Errorf("%w: %s (query: %s)", ErrBadQuery, printable(pe.Msg, 512), expr)
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
