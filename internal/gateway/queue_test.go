package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

// queueGateway starts a gateway whose clock and timers are one fake clock.
func queueGateway(t *testing.T, fc *clocktesting.FakeClock, config string, opts ...func(*Options)) *testGateway {
	t.Helper()
	o := Options{Now: fc.Now, Timers: fc, Logger: quietLogger()}
	for _, f := range opts {
		f(&o)
	}
	g := New(o)
	if err := g.Load([]byte(config)); err != nil {
		t.Fatalf("config: %v", err)
	}
	tg := &testGateway{Gateway: g}
	tg.srv = newLoopbackServer(t, g)
	// Runs before the server closes: a test that failed with requests still waiting lets them
	// go instead of waiting for them forever.
	t.Cleanup(func() { fc.Step(time.Hour) })
	return tg
}

// newLoopbackServer serves h on loopback until the test ends.
func newLoopbackServer(t *testing.T, g *Gateway) *httptest.Server {
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		srv.Close()
		g.Close()
	})
	return srv
}

// reply is what a queued request got; code -1 and retry the error when it got no response.
type reply struct {
	code   int
	queued string // X-Qwen-Queued-Ms
	retry  string
}

// postAsync sends a chat request in the background; its reply always arrives on the channel
// (t.Fatal from this goroutine would leave the test waiting for it forever).
func postAsync(t *testing.T, tg *testGateway, headers ...string) <-chan reply {
	ch := make(chan reply, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, tg.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil {
			ch <- reply{code: -1, retry: err.Error()}
			return
		}
		ch <- reply{resp.StatusCode, resp.Header.Get(queuedHeader), resp.Header.Get("Retry-After")}
	}()
	return ch
}

// waitQueued waits (on the gateway's state, never on time) until n requests are waiting for
// their turn with their timers started (the queue's timers are the only ones on fc).
func waitQueued(t *testing.T, tg *testGateway, fc *clocktesting.FakeClock, n int) {
	t.Helper()
	q := tg.state.Load().policy.queue
	deadline := time.Now().Add(30 * time.Second)
	for q.len() != n || fc.Waiters() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", q.len(), n)
		}
		runtimeGosched()
	}
}

const queuePolicy = `
  policy: p
  algorithm: LeakyBucket
  queue: {maxWait: 10s, maxQueued: %d}
  limits: {requestsPerMinute: 60, burst: 5}
`

// TestLeakyBucketQueuesInsteadOfRefusing: at 60/min (one request a second) with a bucket of 5
// and maxWait 10s, five requests at once are all served, one a second, each told how long it
// waited (X-Qwen-Queued-Ms) and none of that counted as request latency; a sixth finds the
// bucket full and gets 429 at once.
func TestLeakyBucketQueuesInsteadOfRefusing(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	fc := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	tg := queueGateway(t, fc, limitConfig(e.srv.URL, fmt.Sprintf(queuePolicy, 100)))
	first := <-postAsync(t, tg)
	if first.code != 200 || first.queued != "0" {
		t.Fatalf("first request: %+v, want 200 without waiting", first)
	}
	var waiting []<-chan reply
	for i := 1; i < 5; i++ {
		waiting = append(waiting, postAsync(t, tg))
		waitQueued(t, tg, fc, i)
	}
	if r := <-postAsync(t, tg); r.code != http.StatusTooManyRequests {
		t.Fatalf("sixth request: %+v, want 429 (the bucket holds 5)", r)
	}
	if e.calls.Load() != 1 {
		t.Fatalf("engine called %d times while 4 wait", e.calls.Load())
	}
	// A request's duration is written after its reply reaches the client: each step waits for
	// the one before it to be written, or the step would count as that request's latency.
	const duration = "qwen_gateway_request_duration_seconds"
	waitMetric(t, tg.Gateway, 2, duration) // the first and the 429
	for i, ch := range waiting {
		fc.Step(time.Second)
		r := <-ch
		if want := strconv.Itoa((i + 1) * 1000); r.code != 200 || r.queued != want {
			t.Errorf("request %d: %+v, want 200 after %s ms", i+2, r, want)
		}
		waitMetric(t, tg.Gateway, float64(i+3), duration)
	}
	if n, sum := histogram(t, tg.Gateway, "qwen_gateway_queue_wait_seconds", "class", "Standard"); n != 5 || sum != 1+2+3+4 {
		t.Errorf("queue_wait_seconds: %d observations summing to %v, want 5 summing to 10", n, sum)
	}
	if n, sum := histogram(t, tg.Gateway, duration); n != 6 || sum != 0 {
		t.Errorf("request_duration_seconds: %d summing to %v, want 6 summing to 0: the queue counted as latency", n, sum)
	}
}

// TestQueueFullPushesOutTheHeavyClient: with room for 3 waiting requests, a heavy client that
// holds all 3 is refused a fourth, and a light client's request takes the place of the heavy
// client's newest (which gets 429): one client cannot fill the queue.
func TestQueueFullPushesOutTheHeavyClient(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	fc := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	tg := queueGateway(t, fc, basicConfig(e.srv.URL)+"trustedProxies: [127.0.0.1]\nrateLimit:"+fmt.Sprintf(queuePolicy, 3))
	heavy := func() []string { return []string{"X-Forwarded-For", "10.0.0.1"} }
	if r := <-postAsync(t, tg, heavy()...); r.code != 200 {
		t.Fatalf("heavy's first: %+v", r)
	}
	var hs []<-chan reply
	for i := 1; i <= 3; i++ {
		hs = append(hs, postAsync(t, tg, heavy()...))
		waitQueued(t, tg, fc, i)
	}
	// The queue is full (3): the heavy client's next is refused, it has the most waiting.
	if r := <-postAsync(t, tg, heavy()...); r.code != http.StatusTooManyRequests {
		t.Fatalf("heavy client into a full queue: %+v, want 429", r)
	}
	// A light client's first passes at once (its bucket is empty); its second must wait, and
	// takes the place of the heavy client's newest.
	if r := <-postAsync(t, tg, "X-Forwarded-For", "10.0.0.2"); r.code != 200 || r.queued != "0" {
		t.Fatalf("light client's first: %+v", r)
	}
	light := postAsync(t, tg, "X-Forwarded-For", "10.0.0.2")
	if r := <-hs[2]; r.code != http.StatusTooManyRequests || r.retry == "" {
		t.Fatalf("heavy client's newest: %+v, want 429 pushed out", r)
	}
	waitQueued(t, tg, fc, 3)
	fc.Step(time.Second)
	got := []reply{<-hs[0], <-light}
	fc.Step(time.Second)
	got = append(got, <-hs[1])
	if fmt.Sprint(got) != "[{200 1000 } {200 1000 } {200 2000 }]" {
		t.Errorf("replies %v", got)
	}
	if n := waitMetric(t, tg.Gateway, 2, "qwen_gateway_rate_limited_total", "reason", "queue_full", "mode", "Enforce"); n != 2 {
		t.Errorf("rate_limited_total{queue_full} = %v, want 2", n)
	}
}

// TestFairQueueCriticalFirst: within a client's sub-queue the turns its bucket gave out go to
// the most critical first, each class in arrival order; and a full queue drops the least
// critical of the longest sub-queue.
func TestFairQueueCriticalFirst(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	q := newFairQueue(4)
	s1 := q.push("a", classSheddable, t0.Add(1*time.Second))
	s2 := q.push("a", classStandard, t0.Add(2*time.Second))
	c := q.push("a", classCritical, t0.Add(3*time.Second))
	at := func(ws ...*waiter) []int {
		var out []int
		for _, w := range ws {
			out = append(out, int(w.at.Sub(t0)/time.Second))
		}
		return out
	}
	if got := at(c, s2, s1); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("turns of Critical, Standard, Sheddable = %v, want [1 2 3]", got)
	}
	b := q.push("b", classStandard, t0)
	if q.len() != 4 {
		t.Fatalf("len %d", q.len())
	}
	// Full: a's Standard newcomer may only push out a less critical one of a's own: the Sheddable.
	s3 := q.push("a", classStandard, t0.Add(4*time.Second))
	if s3 == nil || !s1.dropped {
		t.Fatalf("a Standard newcomer did not replace a's Sheddable (dropped %v)", s1.dropped)
	}
	// Full again: a's Sheddable newcomer has nothing less critical to push out.
	if w := q.push("a", classSheddable, t0.Add(5*time.Second)); w != nil {
		t.Fatal("a Sheddable newcomer pushed out a more critical request")
	}
	// b has one waiting, a three: b's newcomer pushes out a's newest least critical.
	if w := q.push("b", classSheddable, t0.Add(time.Second)); w == nil || !s3.dropped || b.dropped {
		t.Fatalf("b's newcomer: %v, a's newest Standard dropped %v", w, s3.dropped)
	}
}

// TestLeakyBucketQueueSharedThroughRedis: with Redis the shared bucket decides each request's
// turn and the replica that received it waits: a request that gateway b receives right after
// gateway a served one waits a second (at 60/min), on b's own timers.
func TestLeakyBucketQueueSharedThroughRedis(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	rs := redisserver.Start(t)
	fc := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	cfg := limitConfig(e.srv.URL, fmt.Sprintf(queuePolicy, 100)+fmt.Sprintf("  redis: {address: %q}\n", rs.Addr()))
	atNow := func(o *Options) { o.RedisAtNow = true } // Redis decides on the fake clock too
	a, b := queueGateway(t, fc, cfg, atNow), queueGateway(t, fc, cfg, atNow)
	if r := <-postAsync(t, a); r.code != 200 || r.queued != "0" {
		t.Fatalf("on a: %+v", r)
	}
	ch := postAsync(t, b)
	waitQueued(t, b, fc, 1)
	if n := a.state.Load().policy.queue.len(); n != 0 {
		t.Fatalf("%d queued on a", n)
	}
	fc.Step(time.Second)
	if r := <-ch; r.code != 200 || r.queued != "1000" {
		t.Fatalf("on b: %+v, want 200 after 1000 ms", r)
	}
}

// histogram returns the sample count and sum of the histogram name with the label pairs.
func histogram(t *testing.T, g *Gateway, name string, labels ...string) (uint64, float64) {
	t.Helper()
	m := findMetric(t, g, name, labels...)
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// TestQueueClientLeavesIsRefunded: a client that hangs up while its request waits frees its
// place in the queue and its charge: the next request gets the turn the first would have had,
// and the one that left counts as 499.
func TestQueueClientLeavesIsRefunded(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	fc := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	tg := queueGateway(t, fc, limitConfig(e.srv.URL, fmt.Sprintf(queuePolicy, 100)))
	if r := <-postAsync(t, tg); r.code != 200 {
		t.Fatalf("first: %+v", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tg.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody))
		req.Header.Set("Content-Type", "application/json")
		_, err := http.DefaultClient.Do(req)
		gone <- err
	}()
	waitQueued(t, tg, fc, 1)
	cancel()
	<-gone
	waitQueued(t, tg, fc, 0)
	// The refund comes after the request leaves the queue; its 499 is counted after the refund.
	if n := waitMetric(t, tg.Gateway, 1, "qwen_gateway_requests_total", "code", "499"); n != 1 {
		t.Fatalf("requests_total{code=499} = %v", n)
	}
	next := postAsync(t, tg)
	waitQueued(t, tg, fc, 1)
	fc.Step(time.Second)
	select {
	case r := <-next:
		if r.code != 200 || r.queued != "1000" {
			t.Fatalf("after the refund: %+v, want 200 after 1000 ms (the turn of the one that left)", r)
		}
	case <-time.After(30 * time.Second): // a guard, not a wait: the fake clock decides
		t.Fatal("the next request still waits a second after its turn: the one that left was not refunded")
	}
}

// TestShadowPolicyDoesNotQueue: a Shadow policy with a queue delays no one (and never answers
// 429 for a full queue): seven requests at once are served at once, and the two the bucket of
// 5 could not hold are counted as Shadow rejections.
func TestShadowPolicyDoesNotQueue(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	fc := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	tg := queueGateway(t, fc, limitConfig(e.srv.URL, "  mode: Shadow"+fmt.Sprintf(queuePolicy, 1)))
	for i := range 7 {
		if r := <-postAsync(t, tg); r.code != 200 || r.queued != "" {
			t.Fatalf("request %d: %+v, want 200 at once, never queued", i, r)
		}
	}
	if n := metricValue(t, tg.Gateway, "qwen_gateway_rate_limited_total", "reason", "requests", "mode", "Shadow"); n != 2 {
		t.Errorf("rate_limited_total{mode=Shadow} = %v, want 2 (beyond the bucket of 5)", n)
	}
}
