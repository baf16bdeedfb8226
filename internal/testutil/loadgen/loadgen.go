// Package loadgen sends a closed-loop HTTP load from this machine to a loopback server: a fixed
// number of workers, each sending one request after the other, bounded both in time and in
// count, and reports requests per second and latency percentiles. A request counts when its
// whole response body has been read, so a stream counts at its end.
package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure Run.
type Options struct {
	// URL receives every request, POSTed with Body as application/json.
	URL  string
	Body []byte
	// Concurrency is the number of workers (closed loop); default 32.
	Concurrency int
	// Duration bounds the run; default 5s.
	Duration time.Duration
	// MaxRequests bounds the run too; default 1 000 000.
	MaxRequests int64
}

// Result is what a run measured.
type Result struct {
	// OK are the requests answered 2xx and read to the end; Failed the others.
	OK, Failed int64
	Elapsed    time.Duration
	// P50 and P99 are the latencies of the OK requests, first byte sent to last byte read.
	P50, P99 time.Duration
}

// RPS is OK requests per second.
func (r Result) RPS() float64 { return float64(r.OK) / r.Elapsed.Seconds() }

func (r Result) String() string {
	return fmt.Sprintf("%8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  (%d ok, %d failed in %.1fs)",
		r.RPS(), ms(r.P50), ms(r.P99), r.OK, r.Failed, r.Elapsed.Seconds())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Run sends the load and returns when the time or the count is used up.
func Run(ctx context.Context, o Options) Result {
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = 1_000_000
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: o.Concurrency * 2, MaxIdleConnsPerHost: o.Concurrency * 2, IdleConnTimeout: time.Minute,
	}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var (
		issued, failed atomic.Int64
		mu             sync.Mutex
		lat            []time.Duration
		wg             sync.WaitGroup
	)
	begin := time.Now()
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil && issued.Add(1) <= o.MaxRequests {
				start := time.Now()
				if err := once(ctx, client, o); err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := Result{OK: int64(len(lat)), Failed: failed.Load(), Elapsed: time.Since(begin)}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50, r.P99 = lat[len(lat)*50/100], lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r
}

func once(ctx context.Context, c *http.Client, o Options) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, bytes.NewReader(o.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
