package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/kubetest"
)

// TestManagerServesProbesAndSecureMetrics starts the real manager against a real API server
// with leader election and checks its probes, its authenticated metrics endpoint and a clean stop.
func TestManagerServesProbesAndSecureMetrics(t *testing.T) {
	env, err := kubetest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()

	probes, metrics := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{
			"--kubeconfig", env.Kubeconfig,
			"--health-probe-bind-address", probes,
			"--metrics-bind-address", metrics,
			"--leader-elect", "--leader-election-namespace", "default",
		})
	}()

	waitStatus(t, "http://"+probes+"/healthz", http.DefaultClient, http.StatusOK, done)
	waitStatus(t, "http://"+probes+"/readyz", http.DefaultClient, http.StatusOK, done)
	// Metrics are served over HTTPS and refuse a scraper without credentials.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitStatus(t, "https://"+metrics+"/metrics", insecure, http.StatusUnauthorized, done)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("manager stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("manager did not stop within 30s of its context ending")
	}
}

func TestBadFlagIsAnError(t *testing.T) {
	err := run(context.Background(), []string{"--no-such-flag"})
	if err == nil {
		t.Fatal("run accepted an unknown flag")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitStatus polls url until it answers with want, the manager exits, or 60 s pass.
func waitStatus(t *testing.T, url string, c *http.Client, want int, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("manager exited early: %v", err)
		default:
		}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = fmt.Sprint(resp.StatusCode)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered %d (last: %s)", url, want, last)
}

func TestSizingFlags(t *testing.T) {
	parse := func(args ...string) (options, error) {
		o, _, err := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), args)
		return o, err
	}
	o, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if o.kubeAPIQPS != DefaultKubeAPIQPS || o.kubeAPIBurst != DefaultKubeAPIBurst || o.qwenServiceWorkers != DefaultQwenServiceWorkers {
		t.Errorf("defaults: qps %v burst %d workers %d", o.kubeAPIQPS, o.kubeAPIBurst, o.qwenServiceWorkers)
	}
	if o, err = parse("--kube-api-qps=-1", "--kube-api-burst=0", "--qwenservice-workers=8"); err != nil || o.kubeAPIQPS != -1 || o.qwenServiceWorkers != 8 {
		t.Errorf("no limit, 8 workers: %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"--kube-api-qps=0"}, {"--kube-api-burst=0"}, {"--qwenservice-workers=0"}} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
