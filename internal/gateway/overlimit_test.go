package gateway

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/redisserver"
)

// scriptCommands are the commands the limiter's Lua scripts run inside Redis: INFO
// commandstats counts them, but they cost no round trip.
var scriptCommands = map[string]bool{"get": true, "set": true, "del": true, "time": true,
	"zremrangebyscore": true, "zcard": true, "zadd": true, "zrange": true, "pexpire": true}

// roundTrips is the number of commands clients sent Redis since its statistics were reset,
// not counting CONFIG RESETSTAT itself nor PING: rueidis pings a connection that received
// nothing for a second (Dialer.KeepAlive), whatever the traffic.
func roundTrips(srv *redisserver.Server) (int64, map[string]int64) {
	stats := srv.CommandStats()
	var n int64
	for cmd, calls := range stats {
		if !scriptCommands[cmd] && cmd != "config|resetstat" && cmd != "ping" {
			n += calls
		}
	}
	return n, stats
}

// TestRedisAbusiveClient: once a client is over a limit, the gateway remembers it until the
// earliest instant it could be admitted again, so a flood after the first rejection costs
// Redis no round trip at all; the 429s keep their Retry-After; the client is admitted again
// once it has passed; another client is unaffected. Both for a requests-per-minute and a
// tokens-per-minute limit (whose rejection must not charge and refund the requests quota).
func TestRedisAbusiveClient(t *testing.T) {
	e := newFakeEngine(t, "engine-model") // usage: 7 prompt + 3 completion tokens
	rs := redisserver.Start(t)
	clock := newClock()
	clock.Advance(time.Minute - time.Duration(clock.Now().UnixNano()%int64(time.Minute))) // a window boundary
	tg := startGatewayWith(t, Options{Now: clock.Now, Logger: quietLogger(), RedisAtNow: true}, limitConfig(e.srv.URL, fmt.Sprintf(`
  policy: p
  algorithm: FixedWindow
  key: {source: Header, header: X-User-Id}
  limits: {requestsPerMinute: 5, tokensPerMinute: 100, maxConcurrentRequests: 10}
  redis: {address: %q}
`, rs.Addr())))
	tg.clock = clock
	post := func(user, body string) (int, string) {
		resp := tg.post(t, "/v1/chat/completions", body, "X-User-Id", user)
		readAll(t, resp)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	small := chatBody
	big := `{"model":"Qwen3-1.7B","max_tokens":60,"messages":[{"role":"user","content":"hi"}]}`
	const flood = 2000
	for _, c := range []struct{ name, body string }{
		{"requests", small}, // 5 per minute
		{"tokens", big},     // an estimate of 60 + the prompt, trued up to the 10 used, against 100 per minute
	} {
		t.Run(c.name, func(t *testing.T) {
			abuser, polite := "abuser-"+c.name, "polite-"+c.name
			var first string // the first rejection's Retry-After
			for i := 0; first == ""; i++ {
				code, retry := post(abuser, c.body)
				switch {
				case code == 429:
					first = retry
				case code != 200 || i == 10:
					t.Fatalf("request %d: %d, want 200 until the limit", i, code)
				}
			}
			rs.ResetStats()
			for i := range flood {
				if code, retry := post(abuser, c.body); code != 429 || retry != first {
					t.Fatalf("flood request %d: %d Retry-After %q, want 429 with %s", i, code, retry, first)
				}
			}
			n, stats := roundTrips(rs)
			t.Logf("%d requests over the %s limit cost Redis %d round trips (%v); Retry-After %ss", flood, c.name, n, stats, first)
			if n != 0 {
				t.Errorf("%d round trips for a flood of %d after the first rejection, want 0", n, flood)
			}
			if code, _ := post(polite, small); code != 200 {
				t.Errorf("another client: %d, want 200", code)
			}
			wait, _ := strconv.Atoi(first)
			clock.Advance(time.Duration(wait) * time.Second)
			if code, _ := post(abuser, c.body); code != 200 {
				t.Errorf("after Retry-After: %d, want 200 (through Redis)", code)
			}
		})
	}
}
