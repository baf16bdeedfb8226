package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

// TestSlidingLogThroughGateway: a SlidingLog policy admits no more than its limit in any 60 s
// span, where FixedWindow (a new calendar minute) and SlidingWindow (the previous minute
// weighted down) would both admit: 3 requests at :30, then one at 1:29 is refused with
// Retry-After 1, and one at 1:30 (the first entry has left the log) is admitted.
func TestSlidingLogThroughGateway(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	clock := newClock()
	tg := startGateway(t, clock, limitConfig(e.srv.URL, `
  policy: p
  algorithm: SlidingLog
  limits: {requestsPerMinute: 3}
`))
	clock.Advance(time.Minute - time.Duration(clock.Now().UnixNano()%int64(time.Minute)) + 30*time.Second)
	code := func() (int, string) {
		resp := tg.post(t, "/v1/chat/completions", chatBody)
		readAll(t, resp)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i := 0; i < 3; i++ {
		if c, _ := code(); c != 200 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	clock.Advance(59 * time.Second)
	if c, ra := code(); c != 429 || ra != "1" {
		t.Fatalf("59 s later: %d Retry-After %q, want 429 and 1 (the log still holds 3)", c, ra)
	}
	clock.Advance(time.Second)
	if c, _ := code(); c != 200 {
		t.Fatalf("60 s later: %d, want 200", c)
	}
}

// TestSlidingLogRedisSharedAndBounded: two gateways sharing a Redis share one SlidingLog, and
// the log of a key holds at most requestsPerMinute members however many requests arrive.
func TestSlidingLogRedisSharedAndBounded(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	rs := redisserver.Start(t)
	cfg := limitConfig(e.srv.URL, fmt.Sprintf(`
  policy: p
  algorithm: SlidingLog
  failureMode: FailClosed
  limits: {requestsPerMinute: 3}
  redis: {address: %q}
`, rs.Addr()))
	a, b := startGateway(t, nil, cfg), startGateway(t, nil, cfg)
	codes := alternate(t, 8, a, b)
	if fmt.Sprint(codes) != "[200 200 200 429 429 429 429 429]" {
		t.Fatalf("codes %v, want 3 of the shared 3/min then 429", codes)
	}
	km := rs.MustDo("KEYS", "*")
	keys, err := km.AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range keys {
		tm := rs.MustDo("TYPE", k)
		if typ, _ := tm.ToString(); typ != "zset" {
			continue
		}
		found = true
		zm := rs.MustDo("ZCARD", k)
		if n, err := zm.AsInt64(); err != nil || n != 3 {
			t.Errorf("log %s holds %d members (%v), want 3", k, n, err)
		}
	}
	if !found {
		t.Errorf("no sorted set among the keys %s", strings.Join(keys, ", "))
	}
}
