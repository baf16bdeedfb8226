package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/render"
)

// probeMain is `manager probe`, what the Helm chart's `helm test` Pod runs (the manager image
// has no shell and no curl). It lists the QwenServices and checks each one end to end as a
// client in the cluster sees it: the running operator has reconciled its spec, its gateway
// answers /readyz, and /v1/models serves its model (or asks for an API key when the service
// has keys). With no QwenService yet it checks that the API server serves the kind, which is
// all there is to call right after install. It prints one line per service and returns an
// error naming every service that did not pass within the timeout.
func probeMain(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	namespace := fs.String("namespace", "", "only check the QwenServices of this namespace (default: all)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to retry a service that does not pass yet")
	kubeconfig := fs.String("kubeconfig", "", "path of a kubeconfig; default: in-cluster")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return fmt.Errorf("finding the API server: %w", err)
	}
	kube, err := client.New(cfg, client.Options{Scheme: render.NewScheme()})
	if err != nil {
		return err
	}
	p := &prober{kube: kube, http: &http.Client{Timeout: 10 * time.Second}, namespace: *namespace, out: out, interval: 2 * time.Second}
	return p.run(ctx, *timeout)
}

// prober checks QwenServices through their gateways.
type prober struct {
	kube      client.Reader
	http      *http.Client
	namespace string
	out       io.Writer
	// interval between attempts at a service that did not pass.
	interval time.Duration
	// gatewayURL is a service's gateway base URL; default: status.endpoint without /v1.
	gatewayURL func(*v1alpha1.QwenService) string
}

// run checks every QwenService, retrying each until it passes or timeout passes (0: once).
func (p *prober) run(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var list v1alpha1.QwenServiceList
	if err := p.retry(ctx, deadline, func() error { return p.kube.List(ctx, &list, client.InNamespace(p.namespace)) }); err != nil {
		return fmt.Errorf("listing QwenServices: %w", err)
	}
	if len(list.Items) == 0 {
		fmt.Fprintln(p.out, "the API serves QwenServices and none exists yet: create one (config/samples/) and run helm test again to check its gateway")
		return nil
	}
	var failed []error
	for i := range list.Items {
		qs := &list.Items[i]
		var detail string
		err := p.retry(ctx, deadline, func() error {
			var err error
			detail, err = p.check(ctx, qs)
			return err
		})
		if err != nil {
			failed = append(failed, fmt.Errorf("%s/%s: %w", qs.Namespace, qs.Name, err))
			fmt.Fprintf(p.out, "FAIL %s/%s: %v\n", qs.Namespace, qs.Name, err)
			continue
		}
		fmt.Fprintf(p.out, "ok   %s/%s: %s\n", qs.Namespace, qs.Name, detail)
	}
	return errors.Join(failed...)
}

// retry calls f until it succeeds, the deadline passes or ctx ends, and returns f's last error.
func (p *prober) retry(ctx context.Context, deadline time.Time, f func() error) error {
	for {
		err := f()
		if err == nil || !time.Now().Add(p.interval).Before(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(p.interval):
		}
	}
}

// check is one attempt at a service: it re-reads the service, then calls its gateway.
func (p *prober) check(ctx context.Context, qs *v1alpha1.QwenService) (string, error) {
	if err := p.kube.Get(ctx, client.ObjectKeyFromObject(qs), qs); err != nil {
		return "", err
	}
	if qs.Status.ObservedGeneration != qs.Generation {
		return "", fmt.Errorf("the operator has not reconciled generation %d yet (status.observedGeneration %d): is the manager running?", qs.Generation, qs.Status.ObservedGeneration)
	}
	base := strings.TrimSuffix(qs.Status.Endpoint, "/v1")
	if p.gatewayURL != nil {
		base = p.gatewayURL(qs)
	}
	if base == "" {
		return "", errors.New("no status.endpoint yet")
	}
	if code, _, err := p.get(ctx, base+"/readyz"); err != nil || code != http.StatusOK {
		return "", fmt.Errorf("gateway %s/readyz: %s", base, describe(code, err))
	}
	code, body, err := p.get(ctx, base+"/v1/models")
	switch {
	case err != nil:
		return "", fmt.Errorf("gateway %s/v1/models: %w", base, err)
	case code == http.StatusUnauthorized && qs.Spec.Gateway.APIKeysSecretRef != nil:
		return fmt.Sprintf("gateway %s ready; /v1/models asks for an API key (spec.gateway.apiKeysSecretRef)", base), nil
	case code != http.StatusOK:
		return "", fmt.Errorf("gateway %s/v1/models: %s", base, describe(code, nil))
	}
	var models struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &models); err != nil {
		return "", fmt.Errorf("gateway %s/v1/models: %w", base, err)
	}
	var ids []string
	for _, m := range models.Data {
		ids = append(ids, m.ID)
	}
	want := render.ServedName(qs.Spec.Model)
	if !slices.Contains(ids, want) {
		return "", fmt.Errorf("gateway %s/v1/models lists %v, not %s", base, ids, want)
	}
	return fmt.Sprintf("gateway %s ready, serves %s", base, want), nil
}

func (p *prober) get(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

func describe(code int, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("HTTP %d %s", code, http.StatusText(code))
}
