package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
)

// Proxy overhead: the same request sent straight to an upstream ("direct") and through the
// gateway ("gateway"), sequentially over keep-alive connections. Each reports p50/p99 latency
// per request; for streams, time to the first data chunk (ttft).
//
//	go test -run '^$' -bench 'Proxy|TTFT' -benchtime 2000x ./internal/gateway/

const benchChat = `{"model":"Qwen3-1.7B","max_tokens":8,"messages":[{"role":"user","content":"Say something short about rate limits."}]}`
const benchStream = `{"model":"Qwen3-1.7B","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"Say something short about rate limits."}]}`

type benchTarget struct{ name, url string }

// benchTargets starts the upstreams and a gateway in front of each: a fast in-process fake
// engine (isolates the gateway's own cost) and the real simulator.
func benchTargets(b *testing.B, limits bool) []benchTarget {
	e := newFakeEngine(b, "Qwen3-1.7B")
	sim := simulator.Start(b, simulator.Options{Model: "Qwen3-1.7B"})
	rl := ""
	if limits {
		rl = "rateLimit: {policy: p, limits: {requestsPerMinute: 1000000, burst: 1000000, tokensPerMinute: 18000000, maxConcurrentRequests: 1000}}\n"
	}
	gwFake := startGateway(b, nil, fmt.Sprintf("upstream: {url: %q, model: Qwen3-1.7B}\n%s", e.srv.URL, rl))
	gwSim := startGateway(b, nil, fmt.Sprintf("upstream: {url: %q, model: Qwen3-1.7B}\n%s", sim.URL, rl))
	return []benchTarget{
		{"fake/direct", e.srv.URL}, {"fake/gateway", gwFake.srv.URL},
		{"sim/direct", sim.URL}, {"sim/gateway", gwSim.srv.URL},
	}
}

func reportLatency(b *testing.B, lat []time.Duration, prefix string) {
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), prefix+"p50-µs")
	b.ReportMetric(q(0.99), prefix+"p99-µs")
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
}

func BenchmarkProxy(b *testing.B) {
	for _, limits := range []bool{false, true} {
		for _, tg := range benchTargets(b, limits) {
			if limits && strings.HasSuffix(tg.name, "direct") {
				continue
			}
			name := tg.name
			if limits {
				name += "+limits"
			}
			b.Run(name, func(b *testing.B) {
				c := benchClient()
				lat := make([]time.Duration, 0, b.N)
				b.ReportAllocs()
				for b.Loop() {
					start := time.Now()
					resp, err := c.Post(tg.url+"/v1/chat/completions", "application/json", strings.NewReader(benchChat))
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
					lat = append(lat, time.Since(start))
				}
				reportLatency(b, lat, "")
			})
		}
	}
}

func BenchmarkTTFT(b *testing.B) {
	for _, tg := range benchTargets(b, false) {
		b.Run(tg.name, func(b *testing.B) {
			c := benchClient()
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				resp, err := c.Post(tg.url+"/v1/chat/completions", "application/json", strings.NewReader(benchStream))
				if err != nil {
					b.Fatal(err)
				}
				rd := bufio.NewReader(resp.Body)
				for {
					line, err := rd.ReadString('\n')
					if err != nil {
						b.Fatalf("no data chunk: %v", err)
					}
					if strings.HasPrefix(line, "data: {") {
						break
					}
				}
				lat = append(lat, time.Since(start))
				io.Copy(io.Discard, rd)
				resp.Body.Close()
			}
			reportLatency(b, lat, "ttft-")
		})
	}
}

// BenchmarkParseAndRewrite is the gateway's per-request CPU work on the body.
func BenchmarkParseAndRewrite(b *testing.B) {
	body := []byte(`{"model":"Qwen3-1.7B","stream":true,"enable_thinking":false,"max_tokens":256,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"` + strings.Repeat("Explain token buckets. ", 20) + `"}]}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req, aerr := parseRequest(chatEndpoint, "application/json", body)
		if aerr != nil {
			b.Fatal(aerr)
		}
		if _, err := req.upstreamBody(rewrite{model: "Qwen3-1.7B", stream: true}); err != nil {
			b.Fatal(err)
		}
	}
}
