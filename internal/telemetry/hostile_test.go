package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/telemetry"
)

// TestErrorBodiesStayOut: whatever a server at a plan's URL answers, its body never reaches
// the error that goes into the plan's status (the URL may be any service in the cluster).
func TestErrorBodiesStayOut(t *testing.T) {
	const secret = "db-password=hunter2"
	for name, reply := range map[string]func(w http.ResponseWriter){
		"500 with a body":  func(w http.ResponseWriter) { w.WriteHeader(500); io.WriteString(w, secret) },
		"401 with a body":  func(w http.ResponseWriter) { w.WriteHeader(401); io.WriteString(w, secret) },
		"404 html":         func(w http.ResponseWriter) { w.WriteHeader(404); io.WriteString(w, "<html>"+secret+"</html>") },
		"200 not json":     func(w http.ResponseWriter) { io.WriteString(w, secret) },
		"400 not json":     func(w http.ResponseWriter) { w.WriteHeader(400); io.WriteString(w, secret) },
		"503 json detail":  func(w http.ResponseWriter) { w.WriteHeader(503); io.WriteString(w, `{"detail":"`+secret+`"}`) },
		"302 to elsewhere": func(w http.ResponseWriter) { w.Header().Set("Location", "/"+secret); w.WriteHeader(302) },
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, secret) {
					io.WriteString(w, secret)
					return
				}
				reply(w)
			}))
			defer srv.Close()
			c, err := telemetry.New(telemetry.Access{URL: srv.URL}, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Query(context.Background(), v1alpha1.Trigger{Signal: v1alpha1.SignalGPUTemperature}, target, time.Time{})
			if err == nil || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %v", err)
			}
			if !errors.Is(err, telemetry.ErrUnavailable) && !errors.Is(err, telemetry.ErrBadQuery) {
				t.Fatalf("error %v is neither unavailable nor a bad query", err)
			}
		})
	}
}

// TestAllowed: an allow-list admits URLs by scheme and host only.
func TestAllowed(t *testing.T) {
	list := []string{"http://prometheus-operated.monitoring.svc:9090", "https://thanos.example.com"}
	for url, ok := range map[string]bool{
		"http://prometheus-operated.monitoring.svc:9090":         true,
		"http://prometheus-operated.monitoring.svc:9090/prom":    true,
		"https://THANOS.example.com":                             true,
		"http://thanos.example.com":                              false,
		"http://prometheus-operated.monitoring.svc:9091":         false,
		"http://prometheus-operated.monitoring.svc:9090.evil.io": false,
		"http://10.0.0.1:9090":                                   false,
	} {
		err := telemetry.Allowed(url, list)
		if (err == nil) != ok || err != nil && (!errors.Is(err, telemetry.ErrURLNotAllowed) || telemetry.Reason(err) != telemetry.ReasonPrometheusURLNotAllowed) {
			t.Errorf("%s: %v, want allowed=%v", url, err, ok)
		}
	}
	if telemetry.Allowed("http://anything:1", nil) != nil {
		t.Error("an empty list refuses")
	}
}
