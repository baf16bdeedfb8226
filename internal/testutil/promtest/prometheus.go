// Package promtest runs a real Prometheus (the Debian package) on a free loopback port for
// tests, scraping every second, and an Exporter the test controls that serves DCGM GPU
// metrics, vLLM engine metrics and gateway traffic under the names production uses.
package promtest

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/qwenops/qwen-operator/internal/testutil/proc"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// Prometheus is a running prometheus owned by one test.
type Prometheus struct {
	tb      testing.TB
	bin     string
	config  string
	data    string
	host    string
	port    int
	targets int
	// web is the --web.config.file ("" without one), sec what it asks of clients and hc the
	// client that meets it.
	web string
	sec *Security
	hc  *http.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *proc.Log
}

// Start runs prometheus with scrape and evaluation intervals of 1s, scraping the given
// host:port targets (job "promtest") and storing in a temporary directory; it returns once
// /-/ready answers and every target has been scraped once (up to ~5s after start: Prometheus
// 2.42 hands new targets to its scrapers at most every 5s), and stops prometheus when the
// test ends. It fails the test if prometheus is not installed, naming the install command.
func Start(tb testing.TB, scrapeTargets ...string) *Prometheus {
	tb.Helper()
	return start(tb, "127.0.0.1", staticJob(scrapeTargets), len(scrapeTargets), false)
}

// Options configure StartWith.
type Options struct {
	// Host is the address Prometheus listens on; default 127.0.0.1.
	Host string
	// ScrapeConfigs is the YAML list of scrape_configs (service discovery and relabelling of
	// the caller's choice), written under the 1s global intervals.
	ScrapeConfigs string
	// Secure makes Prometheus serve HTTPS and require basic auth (its --web.config.file), as
	// a Prometheus reachable beyond its own namespace does; see Security.
	Secure bool
}

// StartWith runs prometheus like Start, with the caller's scrape configs and listen host; it
// returns once /-/ready answers.
func StartWith(tb testing.TB, o Options) *Prometheus {
	tb.Helper()
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	return start(tb, o.Host, o.ScrapeConfigs, 0, o.Secure)
}

// StartSecure is Start with Options.Secure: Prometheus serves HTTPS with a certificate of its
// own CA and refuses requests without the basic-auth credentials of its Security.
func StartSecure(tb testing.TB, scrapeTargets ...string) *Prometheus {
	tb.Helper()
	return start(tb, "127.0.0.1", staticJob(scrapeTargets), len(scrapeTargets), true)
}

func start(tb testing.TB, host, scrapeConfigs string, targets int, secure bool) *Prometheus {
	dir := tb.TempDir()
	p := &Prometheus{tb: tb, bin: tools.Path(tb, "prometheus"), host: host,
		config: filepath.Join(dir, "prometheus.yml"), data: filepath.Join(dir, "data"), targets: targets, hc: http.DefaultClient}
	global := "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
	if err := os.WriteFile(p.config, []byte(global+scrapeConfigs), 0o600); err != nil {
		tb.Fatal(err)
	}
	if secure {
		p.secure(dir, host)
	}
	tb.Cleanup(func() {
		p.Stop()
		p.mu.Lock()
		defer p.mu.Unlock()
		if tb.Failed() && p.log != nil && p.log.String() != "" {
			tb.Logf("prometheus output:\n%s", p.log.String())
		}
	})
	var err error
	for attempt := 0; attempt < 5; attempt++ { // another process may take the port in between
		if p.port, err = proc.FreePort(); err != nil {
			continue
		}
		if err = p.start(); err == nil {
			return p
		}
	}
	tb.Fatalf("promtest: %v", err)
	return nil
}

// staticJob is the scrape config of job "promtest" with static targets.
func staticJob(targets []string) string {
	var b strings.Builder
	b.WriteString("- job_name: promtest\n  static_configs:\n  - targets: [")
	for i, t := range targets {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(t))
	}
	b.WriteString("]\n")
	return b.String()
}

// URL is the base URL of the HTTP API, such as http://127.0.0.1:40123 (https:// when secure).
func (p *Prometheus) URL() string {
	scheme := "http://"
	if p.sec != nil {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(p.host, strconv.Itoa(p.port))
}

// Stop kills prometheus (an outage); Restart brings it back on the same port with its data.
func (p *Prometheus) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot exit
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// Restart starts prometheus again on the same port and storage after Stop (or kills and
// restarts a running one) and waits, as Start does, until it has scraped every target.
func (p *Prometheus) Restart() {
	p.tb.Helper()
	p.Stop()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = p.start(); err == nil {
			return
		}
	}
	p.tb.Fatalf("promtest: restart on port %d: %v", p.port, err)
}

// Pause freezes prometheus (SIGSTOP): connections are accepted but nothing answers, so
// clients time out. It returns once every thread has stopped: a signal is delivered
// asynchronously, and a thread still running on a busy machine would answer one more
// query. Resume continues it.
func (p *Prometheus) Pause() {
	p.tb.Helper()
	p.signal(syscall.SIGSTOP)
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for !proc.Stopped(pid) {
		if time.Now().After(deadline) {
			p.tb.Fatalf("promtest: prometheus (pid %d) has threads still running 30s after SIGSTOP", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// Resume continues a paused prometheus (SIGCONT).
func (p *Prometheus) Resume() { p.signal(syscall.SIGCONT) }

func (p *Prometheus) signal(sig syscall.Signal) {
	p.tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		p.tb.Fatalf("promtest: %v: prometheus is not running", sig)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.tb.Fatalf("promtest: %v: %v", sig, err)
	}
}

func (p *Prometheus) start() error {
	begin := time.Now()
	log := &proc.Log{}
	args := []string{
		"--config.file=" + p.config,
		"--storage.tsdb.path=" + p.data,
		"--web.listen-address=" + net.JoinHostPort(p.host, strconv.Itoa(p.port)),
		"--log.level=warn"}
	if p.web != "" {
		args = append(args, "--web.config.file="+p.web)
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := waitReady(p.hc, p.URL(), exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%v; output:\n%s", err, log.String())
	}
	p.mu.Lock()
	p.cmd, p.exited, p.log = cmd, exited, log
	p.mu.Unlock()
	if p.targets == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scraped := fmt.Sprintf(`count(timestamp(up{job="promtest"}) >= %d)`, begin.Unix())
	if err := p.WaitForValue(ctx, scraped, float64(p.targets)); err != nil {
		p.Stop()
		return fmt.Errorf("first scrape: %v; output:\n%s", err, log.String())
	}
	return nil
}

// waitReady polls /-/ready with hc's transport until it answers 200, prometheus exits, or 30s pass.
func waitReady(hc *http.Client, base string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: hc.Transport}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		resp, err := client.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/-/ready: %s", resp.Status)
		}
		last = err
		select {
		case <-exited:
			return fmt.Errorf("prometheus on %s exited before it was ready", base)
		case <-ctx.Done():
			return fmt.Errorf("prometheus on %s not ready after 30s: %v", base, last)
		case <-tick.C:
		}
	}
}

// WaitForValue polls an instant query every 100ms until it returns one number equal to want
// (to 1e-9 relative), or ctx ends; the error then says what was seen last.
func (p *Prometheus) WaitForValue(ctx context.Context, query string, want float64) error {
	return p.waitFor(ctx, query, fmt.Sprintf("the value %v", want), func(v model.Value) bool {
		got, ok := single(v)
		return ok && (got == want || math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)))
	})
}

// WaitForAbsent polls an instant query until it returns no series (e.g. after an Exporter
// stopped serving them and Prometheus marked them stale), or ctx ends.
func (p *Prometheus) WaitForAbsent(ctx context.Context, query string) error {
	return p.waitFor(ctx, query, "no series", func(v model.Value) bool {
		vec, ok := v.(model.Vector)
		return ok && len(vec) == 0
	})
}

func (p *Prometheus) waitFor(ctx context.Context, query, what string, done func(model.Value) bool) error {
	c, err := api.NewClient(api.Config{Address: p.URL(), Client: p.hc})
	if err != nil {
		return err
	}
	promAPI := promv1.NewAPI(c)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		v, _, _, err := promAPI.Query(qctx, query, time.Time{})
		cancel()
		switch {
		case err != nil:
			last = "error: " + err.Error()
		case done(v):
			return nil
		default:
			last = v.String()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promtest: %s did not return %s: last result %s", query, what, last)
		case <-tick.C:
		}
	}
}

// single returns the value of a one-sample vector or a scalar.
func single(v model.Value) (float64, bool) {
	switch r := v.(type) {
	case model.Vector:
		if len(r) == 1 {
			return float64(r[0].Value), true
		}
	case *model.Scalar:
		return float64(r.Value), true
	}
	return 0, false
}
