package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
	"github.com/qwenops/qwen-operator/internal/telemetry"
)

// Querier reads one trigger's value from Prometheus; *telemetry.Client implements it.
type Querier interface {
	Query(ctx context.Context, tr v1alpha1.Trigger, t telemetry.Target, at time.Time) (float64, error)
}

// QuerierFactory returns the Querier of a Prometheus URL.
type QuerierFactory func(url string) (Querier, error)

// Telemetry bounds of the reconcilers that read Prometheus.
const (
	// DefaultQueryBudget bounds the total time one plan's (or policy's) queries may take in
	// one reconcile, however many triggers it has and however slow its Prometheus is.
	DefaultQueryBudget = 15 * time.Second
	// DefaultTelemetryReconciles is how many plans (or policies) are reconciled at once, so
	// a plan whose Prometheus hangs holds up none of the others.
	DefaultTelemetryReconciles = 4
)

// cachedQueriers returns a QuerierFactory that keeps one telemetry.Client per URL and refuses
// URLs outside allowed (see telemetry.Allowed; empty allows every URL).
func cachedQueriers(timeout time.Duration, allowed []string) QuerierFactory {
	var mu sync.Mutex
	clients := map[string]Querier{}
	return func(url string) (Querier, error) {
		if err := telemetry.Allowed(url, allowed); err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if q, ok := clients[url]; ok {
			return q, nil
		}
		c, err := telemetry.New(url, timeout)
		if err != nil {
			return nil, err
		}
		clients[url] = c
		return c, nil
	}
}

// telemetryTarget scopes the queries of a policy or plan to the pods of the QwenService
// named service, by the names render gives its Deployments.
func telemetryTarget(namespace, service string) telemetry.Target {
	qs := &v1alpha1.QwenService{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: service}}
	return telemetry.Target{Namespace: namespace, Service: service, Engine: render.EngineName(qs), Gateway: render.GatewayName(qs)}
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
// live measurement; the injected clock only decides what the values mean), all within budget:
// a query the budget does not leave time for fails as unavailable. Failures are collected, not
// returned early: one bad query must not hide the others' values.
func readTriggers(ctx context.Context, q Querier, triggers []v1alpha1.Trigger, target telemetry.Target, budget time.Duration) readings {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
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
