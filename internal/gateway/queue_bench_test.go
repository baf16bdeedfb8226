package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkQueueFairness: one heavy client with 20 requests in flight at all times and 4
// light clients with 2 each, against a LeakyBucket queue (600/min = 10/s per client, bucket 10,
// maxWait 2s) with room for 8 waiting requests on the replica, for 5 s of real time through the
// gateway on loopback (a fast fake engine). A refused client retries after 50 ms. It reports
// each kind of client's admitted requests per second, its share of all admitted, its 429s per
// second and its mean and p95 wait in the queue (X-Qwen-Queued-Ms).
//
//	go test -run '^$' -bench QueueFairness -benchtime 1x ./internal/gateway/
func BenchmarkQueueFairness(b *testing.B) {
	e := newFakeEngine(b, "engine-model")
	tg := startGateway(b, nil, basicConfig(e.srv.URL)+`trustedProxies: [127.0.0.1]
rateLimit:
  policy: p
  algorithm: LeakyBucket
  queue: {maxWait: 2s, maxQueued: 8}
  limits: {requestsPerMinute: 600, burst: 10}
`)
	const run = 5 * time.Second
	type stats struct {
		mu       sync.Mutex
		ok, r429 int
		waits    []float64
	}
	clients := map[string]*stats{"heavy": {}}
	workers := map[string]int{"heavy": 20}
	for i := 1; i <= 4; i++ {
		clients[fmt.Sprintf("light%d", i)] = &stats{}
		workers[fmt.Sprintf("light%d", i)] = 2
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	b.ResetTimer()
	end := time.Now().Add(run)
	var wg sync.WaitGroup
	i := 0
	for name, n := range workers {
		i++
		ip := fmt.Sprintf("10.0.0.%d", i)
		st := clients[name]
		for range n {
			wg.Go(func() {
				for time.Now().Before(end) {
					req, _ := http.NewRequest(http.MethodPost, tg.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("X-Forwarded-For", ip)
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					readAll(b, resp)
					st.mu.Lock()
					if resp.StatusCode == http.StatusOK {
						st.ok++
						ms, _ := strconv.Atoi(resp.Header.Get(queuedHeader))
						st.waits = append(st.waits, float64(ms))
					} else {
						st.r429++
					}
					st.mu.Unlock()
					if resp.StatusCode != http.StatusOK {
						time.Sleep(50 * time.Millisecond) // a client backing off, not a test waiting
					}
				}
			})
		}
	}
	wg.Wait()
	b.StopTimer()
	total := 0
	for _, st := range clients {
		total += st.ok
	}
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(max(len(xs), 1))
	}
	p95 := func(xs []float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		xs = slices.Sorted(slices.Values(xs))
		return xs[len(xs)*95/100]
	}
	secs := run.Seconds()
	h := clients["heavy"]
	b.ReportMetric(float64(h.ok)/secs, "heavy-ok/s")
	b.ReportMetric(float64(h.ok)/float64(total), "heavy-share")
	b.ReportMetric(float64(h.r429)/secs, "heavy-429/s")
	b.ReportMetric(mean(h.waits), "heavy-wait-ms")
	var lightOK, light429 int
	var lightWaits []float64
	minShare := 1.0
	for name, st := range clients {
		if name == "heavy" {
			continue
		}
		lightOK += st.ok
		light429 += st.r429
		lightWaits = append(lightWaits, st.waits...)
		minShare = min(minShare, float64(st.ok)/float64(total))
		b.Logf("%s: %d admitted (%.1f/s, share %.3f), %d refused, wait mean %.0f ms p95 %.0f ms",
			name, st.ok, float64(st.ok)/secs, float64(st.ok)/float64(total), st.r429, mean(st.waits), p95(st.waits))
	}
	b.Logf("heavy: %d admitted (%.1f/s, share %.3f), %d refused, wait mean %.0f ms p95 %.0f ms",
		h.ok, float64(h.ok)/secs, float64(h.ok)/float64(total), h.r429, mean(h.waits), p95(h.waits))
	b.ReportMetric(float64(lightOK)/4/secs, "light-ok/s")
	b.ReportMetric(minShare, "light-min-share")
	b.ReportMetric(float64(light429)/4/secs, "light-429/s")
	b.ReportMetric(mean(lightWaits), "light-wait-ms")
	b.ReportMetric(p95(lightWaits), "light-p95-wait-ms")
}
