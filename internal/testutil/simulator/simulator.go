// Package simulator runs llm-d-inference-sim, a vLLM simulator, as the inference engine of a
// test: on a free loopback port, with a dummy tokenizer (no model hub), until the test ends.
package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/proc"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// Options configure a simulator.
type Options struct {
	// Model is the served model name. Default "Qwen3-1.7B".
	Model string
	// Mode is "random" (default: sentences from a bank) or "echo" (the last message back).
	Mode string
	// TimeToFirstToken and InterTokenLatency shape the simulated latency (default 0).
	TimeToFirstToken, InterTokenLatency time.Duration
	// FailureRate is the percentage (0-100) of requests that fail with one of FailureTypes
	// (rate_limit, invalid_api_key, context_length, server_error, invalid_request,
	// model_not_found; empty: all). SetFailures changes both while it runs.
	FailureRate  int
	FailureTypes []string
	// Args are extra command-line arguments.
	Args []string
}

// Sim is a running simulator.
type Sim struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234 (without /v1).
	URL   string
	Model string
	cmd   *exec.Cmd
	out   *proc.Log
}

// Start runs a simulator and waits until /health answers; the test's cleanup stops it.
func Start(tb testing.TB, opts Options) *Sim {
	tb.Helper()
	bin := tools.Path(tb, "llm-d-inference-sim")
	s, err := startProcess(bin, opts)
	if err != nil {
		tb.Fatalf("simulator: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// StartProcess runs a simulator outside a test (benchmark commands); the caller must Stop it.
func StartProcess(opts Options) (*Sim, error) {
	bin, err := tools.Lookup("llm-d-inference-sim")
	if err != nil {
		return nil, err
	}
	return startProcess(bin, opts)
}

func startProcess(bin string, opts Options) (*Sim, error) {
	if opts.Model == "" {
		opts.Model = "Qwen3-1.7B"
	}
	if opts.Mode == "" {
		opts.Mode = "random"
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between probe and bind
		s, err := start(bin, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(bin string, opts Options) (*Sim, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{
		"--force-dummy-tokenizer", "--model", opts.Model, "--port", strconv.Itoa(port), "--mode", opts.Mode,
		"--time-to-first-token", opts.TimeToFirstToken.String(), "--inter-token-latency", opts.InterTokenLatency.String(),
		"--failure-injection-rate", strconv.Itoa(opts.FailureRate),
	}
	for _, t := range opts.FailureTypes {
		args = append(args, "--failure-types", t)
	}
	args = append(args, opts.Args...)
	s := &Sim{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Model: opts.Model, out: &proc.Log{}}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("exited during startup (%v):\n%s", err, s.out.String())
		default:
		}
		if resp, err := http.Get(s.URL + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.cmd.WaitDelay = time.Second
				return s, nil
			}
		}
		time.Sleep(20 * time.Millisecond) // polling process readiness only
	}
	s.cmd.Process.Kill()
	return nil, fmt.Errorf("not ready after 60s:\n%s", s.out.String())
}

// SetFailures changes the failure injection of a running simulator (POST /admin/config).
func (s *Sim) SetFailures(tb testing.TB, rate int, types ...string) {
	tb.Helper()
	if types == nil {
		types = []string{}
	}
	body, _ := json.Marshal(map[string]any{"failure-injection-rate": rate, "failure-types": types})
	resp, err := http.Post(s.URL+"/admin/config", "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("simulator admin: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("simulator admin: %s", resp.Status)
	}
}

// Logs returns what the simulator printed so far.
func (s *Sim) Logs() string { return s.out.String() }

// Stop kills the simulator.
func (s *Sim) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
}
