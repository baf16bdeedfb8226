package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/testutil/kubetest"
)

// TestProbe runs `manager probe` against a real API server, with gateways served by httptest:
// no service passes with the message for a fresh install; a reconciled service whose gateway is
// ready and serves its model passes, as does one that asks for an API key when it has keys; a
// gateway that is not ready, serves another model, or a service the operator has not
// reconciled fail, each named with the reason.
func TestProbe(t *testing.T) {
	env, err := kubetest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ai"}}); err != nil {
		t.Fatal(err)
	}

	var out strings.Builder
	p := &prober{kube: env.Client, http: http.DefaultClient, out: &out}
	if err := p.run(ctx, 0); err != nil || !strings.Contains(out.String(), "none exists yet") {
		t.Fatalf("no QwenService: %v\n%s", err, out.String())
	}

	gateways := map[string]*httptest.Server{}
	gateway := func(name string, ready bool, models string, auth bool) {
		gateways[name] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/readyz" && !ready:
				http.Error(w, "not ready", http.StatusServiceUnavailable)
			case r.URL.Path == "/readyz":
				io.WriteString(w, "ok\n")
			case r.URL.Path == "/v1/models" && auth && r.Header.Get("Authorization") == "":
				http.Error(w, `{"error":{"code":"invalid_api_key"}}`, http.StatusUnauthorized)
			case r.URL.Path == "/v1/models":
				io.WriteString(w, `{"object":"list","data":[{"id":"`+models+`","object":"model"}]}`)
			default:
				http.NotFound(w, r)
			}
		}))
		t.Cleanup(gateways[name].Close)
	}
	service := func(name string, reconciled bool, keys bool) {
		qs := &v1alpha1.QwenService{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ai"},
			Spec: v1alpha1.QwenServiceSpec{Model: v1alpha1.ModelSpec{Name: "Qwen/Qwen3-1.7B"}}}
		if keys {
			qs.Spec.Gateway.APIKeysSecretRef = &v1alpha1.LocalObjectRef{Name: "keys"}
		}
		if err := env.Client.Create(ctx, qs); err != nil {
			t.Fatal(err)
		}
		if reconciled {
			qs.Status.ObservedGeneration = qs.Generation
		}
		qs.Status.Endpoint = "http://" + name + "-gateway.ai.svc:8080/v1"
		if err := env.Client.Status().Update(ctx, qs); err != nil {
			t.Fatal(err)
		}
	}
	gateway("ready", true, "Qwen3-1.7B", false)
	service("ready", true, false)
	gateway("keys", true, "Qwen3-1.7B", true)
	service("keys", true, true)
	p.gatewayURL = func(qs *v1alpha1.QwenService) string { return gateways[qs.Name].URL }

	out.Reset()
	if err := p.run(ctx, 0); err != nil {
		t.Fatalf("ready services: %v\n%s", err, out.String())
	}
	for _, want := range []string{"ok   ai/ready: gateway http://127.0.0.1:", "serves Qwen3-1.7B", "ok   ai/keys:", "asks for an API key"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	gateway("starting", false, "Qwen3-1.7B", false)
	service("starting", true, false)
	gateway("other", true, "Qwen3-0.6B", false)
	service("other", true, false)
	gateway("stale", true, "Qwen3-1.7B", false)
	service("stale", false, false)
	out.Reset()
	err = p.run(ctx, 0)
	if err == nil {
		t.Fatalf("failing services pass:\n%s", out.String())
	}
	for _, want := range []string{
		"ai/starting: gateway http://127.0.0.1:", "/readyz: HTTP 503",
		"ai/other: gateway", "/v1/models lists [Qwen3-0.6B], not Qwen3-1.7B",
		"ai/stale: the operator has not reconciled generation 1 yet",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if !strings.Contains(out.String(), "ok   ai/ready") || !strings.Contains(out.String(), "FAIL ai/other") {
		t.Errorf("output:\n%s", out.String())
	}
}
