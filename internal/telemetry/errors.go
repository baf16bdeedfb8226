package telemetry

import (
	"errors"
	"fmt"
)

// The errors of Query, matched with errors.Is; the wrapping error says which signal and
// carries Prometheus's message.
var (
	// ErrNoData means the query ran but returned no series or NaN (e.g. no traffic, no
	// pods scraped yet, or a metric the exporter does not serve).
	ErrNoData = errors.New("no data")
	// ErrBadQuery means Prometheus refused the query (syntax, types, execution) or its result
	// is not one number.
	ErrBadQuery = errors.New("bad query")
	// ErrUnavailable means Prometheus could not be asked: unreachable, timed out, or an HTTP
	// error outside the query API's own.
	ErrUnavailable = errors.New("prometheus unavailable")
	// ErrInvalidConnection means the connection settings cannot be used: a Secret or ConfigMap
	// they name is missing, or holds no usable value (no key, a CA that is not PEM).
	ErrInvalidConnection = errors.New("invalid prometheus connection")
	// ErrInvalidURL means the Prometheus URL is not an absolute http(s) URL; it is an
	// ErrInvalidConnection.
	ErrInvalidURL = fmt.Errorf("%w: invalid url", ErrInvalidConnection)
	// ErrURLNotAllowed means the operator's allow-list of Prometheus URLs does not hold the
	// URL; it is an ErrInvalidURL.
	ErrURLNotAllowed = fmt.Errorf("%w: not in the operator's allowed Prometheus URLs", ErrInvalidURL)
	// ErrUnauthorized means Prometheus (or the proxy in front of it) refused the credentials
	// with 401 or 403; it is an ErrUnavailable.
	ErrUnauthorized = errors.New("credentials refused")
	// ErrUntrusted means the server's TLS certificate did not verify (unknown authority, wrong
	// name); it is an ErrUnavailable.
	ErrUntrusted = errors.New("server certificate not trusted")
)

// Condition reasons for telemetry outcomes (TelemetryAvailable, Accepted).
const (
	// ReasonQueriesSucceeded: every query returned a value.
	ReasonQueriesSucceeded = "QueriesSucceeded"
	// ReasonNoData: a query returned nothing.
	ReasonNoData = "NoData"
	// ReasonInvalidQuery: Prometheus rejected a query.
	ReasonInvalidQuery = "InvalidQuery"
	// ReasonPrometheusUnavailable: Prometheus could not be reached in time.
	ReasonPrometheusUnavailable = "PrometheusUnavailable"
	// ReasonInvalidPrometheusURL: the configured URL is unusable.
	ReasonInvalidPrometheusURL = "InvalidPrometheusURL"
	// ReasonPrometheusURLNotAllowed: the URL is not one the operator allows.
	ReasonPrometheusURLNotAllowed = "PrometheusURLNotAllowed"
	// ReasonInvalidPrometheusConnection: the credentials or CA cannot be read or used.
	ReasonInvalidPrometheusConnection = "InvalidPrometheusConnection"
	// ReasonPrometheusUnauthorized: Prometheus refused the credentials.
	ReasonPrometheusUnauthorized = "PrometheusUnauthorized"
	// ReasonPrometheusUntrusted: Prometheus' certificate did not verify.
	ReasonPrometheusUntrusted = "PrometheusCertificateUntrusted"
	// ReasonQueryFailed: any other error.
	ReasonQueryFailed = "QueryFailed"
)

// Reason is the condition reason for an error from this package (nil: QueriesSucceeded).
// It is the one place errors become reasons.
func Reason(err error) string {
	switch {
	case err == nil:
		return ReasonQueriesSucceeded
	case errors.Is(err, ErrURLNotAllowed):
		return ReasonPrometheusURLNotAllowed
	case errors.Is(err, ErrInvalidURL):
		return ReasonInvalidPrometheusURL
	case errors.Is(err, ErrInvalidConnection):
		return ReasonInvalidPrometheusConnection
	case errors.Is(err, ErrBadQuery):
		return ReasonInvalidQuery
	case errors.Is(err, ErrUnauthorized):
		return ReasonPrometheusUnauthorized
	case errors.Is(err, ErrUntrusted):
		return ReasonPrometheusUntrusted
	case errors.Is(err, ErrUnavailable):
		return ReasonPrometheusUnavailable
	case errors.Is(err, ErrNoData):
		return ReasonNoData
	}
	return ReasonQueryFailed
}
