package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
	"github.com/qwenops/qwen-operator/internal/telemetry"
)

// Querier reads one trigger's value from Prometheus; *telemetry.Client implements it.
type Querier interface {
	Query(ctx context.Context, tr v1alpha1.Trigger, t telemetry.Target, at time.Time) (float64, error)
}

// QuerierFactory returns the Querier of a Prometheus URL and its credentials.
type QuerierFactory func(telemetry.Access) (Querier, error)

// maxCachedQueriers bounds the clients cachedQueriers keeps: every credential rotation makes
// a new one.
const maxCachedQueriers = 256

// Telemetry bounds of the reconcilers that read Prometheus.
const (
	// DefaultQueryBudget bounds the total time one plan's (or policy's) telemetry read may take
	// in one reconcile, however many triggers it has and however slow its Prometheus is.
	DefaultQueryBudget = 15 * time.Second
	// DefaultTelemetryReconciles is how many plans (or policies) are reconciled at once, so
	// a plan whose Prometheus hangs holds up none of the others.
	DefaultTelemetryReconciles = 4
)

// cachedQueriers returns a QuerierFactory that keeps one telemetry.Client per URL and set of
// credentials (Access.Key), so connections are reused until a credential changes, and refuses
// URLs outside allowed (see telemetry.Allowed; empty allows every URL).
func cachedQueriers(timeout time.Duration, allowed []string) QuerierFactory {
	var mu sync.Mutex
	clients := map[string]Querier{}
	return func(a telemetry.Access) (Querier, error) {
		if err := telemetry.Allowed(a.URL, allowed); err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		key := a.Key()
		if q, ok := clients[key]; ok {
			return q, nil
		}
		c, err := telemetry.New(a, timeout)
		if err != nil {
			return nil, err
		}
		if len(clients) >= maxCachedQueriers {
			clear(clients)
		}
		clients[key] = c
		return c, nil
	}
}

// allowedURLs is an allow-list with the operator's default URL added; empty stays empty (any
// URL is allowed).
func allowedURLs(allowed []string, defaultURL string) []string {
	if len(allowed) == 0 || defaultURL == "" {
		return allowed
	}
	return append(slices.Clip(allowed), defaultURL)
}

// telemetryTarget scopes the queries of a policy or plan to the pods of the QwenService
// named service, by the names render gives its Deployments, reading the engine signals of its
// engine type. A service that cannot be read (it is gone) is taken as VLLM; the status then
// says the target is missing anyway.
func telemetryTarget(ctx context.Context, c client.Reader, namespace, service string) telemetry.Target {
	qs := &v1alpha1.QwenService{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: service}, qs); err != nil {
		qs = &v1alpha1.QwenService{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: service}}
	}
	return telemetry.Target{Namespace: namespace, Service: service, Engine: render.EngineName(qs), Gateway: render.GatewayName(qs),
		EngineType: qs.Spec.Engine.Type}
}

// prometheusAccess resolves how to reach the Prometheus of a policy or plan: the connection's
// URL (defaultURL when it names none) and the credentials its Secrets and ConfigMaps in
// namespace hold, read through r (the API, uncached: the manager's cache holds neither kind's
// data). A Secret, ConfigMap or key that is missing is telemetry.ErrInvalidConnection.
func prometheusAccess(ctx context.Context, r client.Reader, namespace string, c *v1alpha1.PrometheusConnection, defaultURL string) (telemetry.Access, error) {
	if c == nil {
		return telemetry.Access{URL: defaultURL}, nil
	}
	a := telemetry.Access{URL: cmp.Or(c.URL, defaultURL)}
	secret := func(ref v1alpha1.KeySelector, field string) (string, error) {
		return credential(ctx, r, namespace, &corev1.Secret{}, ref, field)
	}
	var err error
	if x := c.Authorization; x != nil {
		a.AuthType = x.Type
		if a.Credentials, err = secret(v1alpha1.KeySelector{Name: x.Credentials.Name, Key: cmp.Or(x.Credentials.Key, "token")}, "authorization.credentials"); err != nil {
			return a, err
		}
	}
	if x := c.BasicAuth; x != nil {
		if a.Username, err = secret(x.Username, "basicAuth.username"); err != nil {
			return a, err
		}
		if a.Password, err = secret(x.Password, "basicAuth.password"); err != nil {
			return a, err
		}
	}
	if x := c.TLSConfig; x != nil {
		a.ServerName, a.InsecureSkipVerify = x.ServerName, x.InsecureSkipVerify
		switch {
		case x.CA != nil && x.CA.Secret != nil:
			a.CA, err = secret(*x.CA.Secret, "tlsConfig.ca.secret")
		case x.CA != nil && x.CA.ConfigMap != nil:
			a.CA, err = credential(ctx, r, namespace, &corev1.ConfigMap{}, *x.CA.ConfigMap, "tlsConfig.ca.configMap")
		}
	}
	return a, err
}

// credential reads one key of a Secret or ConfigMap (obj says which) in namespace.
func credential(ctx context.Context, r client.Reader, namespace string, obj client.Object, ref v1alpha1.KeySelector, field string) (string, error) {
	kind := "Secret"
	if _, ok := obj.(*corev1.ConfigMap); ok {
		kind = "ConfigMap"
	}
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, obj); err != nil {
		return "", fmt.Errorf("%w: prometheus.%s: %s %s/%s: %v", telemetry.ErrInvalidConnection, field, kind, namespace, ref.Name, err)
	}
	var v string
	var ok bool
	switch o := obj.(type) {
	case *corev1.Secret:
		var b []byte
		b, ok = o.Data[ref.Key]
		v = string(b)
	case *corev1.ConfigMap:
		v, ok = o.Data[ref.Key]
	}
	if !ok || v == "" {
		return "", fmt.Errorf("%w: prometheus.%s: %s %s/%s has no key %q", telemetry.ErrInvalidConnection, field, kind, namespace, ref.Name, ref.Key)
	}
	return strings.TrimSpace(v), nil
}

// readTelemetry reads triggers from the Prometheus of a policy or plan in namespace,
// scoped to its target service, all within budget; a connection that cannot be made fails
// every trigger.
func readTelemetry(ctx context.Context, c, credentials client.Reader, queriers QuerierFactory, namespace, service string,
	conn *v1alpha1.PrometheusConnection, defaultURL string, triggers []v1alpha1.Trigger, budget time.Duration) readings {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	a, err := prometheusAccess(ctx, credentials, namespace, conn, defaultURL)
	var q Querier
	if err == nil {
		q, err = queriers(a)
	}
	if err != nil {
		telemetryQueryErrors.WithLabelValues(telemetry.Reason(err)).Inc()
		return readings{err: err, failed: len(triggers), total: len(triggers)}
	}
	return readTriggers(ctx, q, triggers, telemetryTarget(ctx, c, namespace, service))
}

// readings are the values of a set of triggers at one instant.
type readings struct {
	// values by Trigger.Key; a trigger without a value is absent.
	values map[string]float64
	// noData are the keys whose query returned nothing.
	noData []string
	// err joins the failures other than no data (unreachable Prometheus, rejected queries).
	err error
	// failed counts the triggers that could not be read for err; total the distinct triggers.
	failed, total int
}

// unavailable reports whether no trigger could be read because Prometheus was unreachable.
func (r readings) unavailable() bool {
	return r.total > 0 && r.failed == r.total && errors.Is(r.err, telemetry.ErrUnavailable)
}

// readTriggers queries every distinct trigger once, at Prometheus's own now (telemetry is a
// live measurement; the injected clock only decides what the values mean); a query ctx's
// deadline leaves no time for fails as unavailable. Failures are collected, not returned
// early: one bad query must not hide the others' values.
func readTriggers(ctx context.Context, q Querier, triggers []v1alpha1.Trigger, target telemetry.Target) readings {
	r := readings{values: map[string]float64{}}
	var errs []error
	seen := map[string]bool{}
	for _, tr := range triggers {
		key := tr.Key()
		if seen[key] {
			continue
		}
		seen[key] = true
		v, err := q.Query(ctx, tr, target, time.Time{})
		switch {
		case err == nil:
			r.values[key] = v
		case errors.Is(err, telemetry.ErrNoData):
			r.noData = append(r.noData, key)
		default:
			telemetryQueryErrors.WithLabelValues(telemetry.Reason(err)).Inc()
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			r.failed++
		}
	}
	sort.Strings(r.noData)
	r.total = len(seen)
	r.err = errors.Join(errs...)
	return r
}
