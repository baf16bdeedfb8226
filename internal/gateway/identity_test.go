package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// TestClientsBehindOneProxyGetTheirOwnLimits: behind an ingress (one proxy hop, the loopback
// peer here) every client has its own bucket with trustedHops: 1, and an entry a client forges
// to the left of the proxy's does not give it a fresh one. Without a trust setting they all
// share the proxy's bucket, which is what the samples did before.
func TestClientsBehindOneProxyGetTheirOwnLimits(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	policy := "rateLimit:\n  policy: p\n  limits: {requestsPerMinute: 1}\n"
	codes := func(tg *testGateway, xffs ...string) string {
		var out []string
		for _, xff := range xffs {
			resp := tg.post(t, "/v1/chat/completions", chatBody, "X-Forwarded-For", xff)
			readAll(t, resp)
			out = append(out, fmt.Sprint(resp.StatusCode))
		}
		return strings.Join(out, " ")
	}
	hops := startGateway(t, newClock(), basicConfig(e.srv.URL)+"trustedHops: 1\n"+policy)
	if got := codes(hops, "198.51.100.1", "198.51.100.2", "198.51.100.1", "203.0.113.9, 198.51.100.1"); got != "200 200 429 429" {
		t.Errorf("trustedHops 1: %s, want each client its own limit and a forged entry ignored", got)
	}
	none := startGateway(t, newClock(), basicConfig(e.srv.URL)+policy)
	if got := codes(none, "198.51.100.1", "198.51.100.2"); got != "200 429" {
		t.Errorf("no trust setting: %s, want one bucket for everyone behind the proxy", got)
	}
}

// TestIPv6ClientsKeyedPerPrefix: the addresses of one /64 share a bucket (a host owns the
// whole /64), another /64 has its own; ipv6PrefixLength: 128 keys per address.
func TestIPv6ClientsKeyedPerPrefix(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	for _, tt := range []struct {
		bits string
		want string
	}{
		{"", "200 429 200"},
		{"ipv6PrefixLength: 128", "200 200 200"},
	} {
		tg := startGateway(t, newClock(), basicConfig(e.srv.URL)+"trustedHops: 1\nrateLimit:\n  policy: p\n  key: {"+tt.bits+"}\n  limits: {requestsPerMinute: 1}\n")
		var got []string
		for _, xff := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::99", "2001:db8:1:3::1"} {
			resp := tg.post(t, "/v1/chat/completions", chatBody, "X-Forwarded-For", xff)
			readAll(t, resp)
			got = append(got, fmt.Sprint(resp.StatusCode))
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("key {%s}: %v, want %s", tt.bits, got, tt.want)
		}
	}
}

// TestHeaderKey: a Header key is limited per value, an override still matches the value, the
// limiter key is a hash (the value may be a credential), and a value over the cap is refused
// with 400 naming the header, counted against the client's address.
func TestHeaderKey(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, newClock(), limitConfig(e.srv.URL, `
  policy: p
  key: {source: Header, header: X-User-Id}
  limits: {requestsPerMinute: 1}
  overrides: [{name: vip, keys: [sk-secret-user], limits: {requestsPerMinute: 2}}]
`))
	code := func(user string) int {
		resp := tg.post(t, "/v1/chat/completions", chatBody, "X-User-Id", user)
		body := readAll(t, resp)
		if resp.StatusCode == 400 {
			if _, _, param, c := openAIError(t, body); param != "X-User-Id" || c != "invalid_header" {
				t.Errorf("400 for a long header: param %v code %v", param, c)
			}
		}
		return resp.StatusCode
	}
	if code("alice") != 200 || code("alice") != 429 || code("bob") != 200 {
		t.Error("per-value limits not applied")
	}
	if code("sk-secret-user") != 200 || code("sk-secret-user") != 200 || code("sk-secret-user") != 429 {
		t.Error("override by header value not applied")
	}
	long := strings.Repeat("x", maxKeyHeaderBytes+1)
	if got := []int{code(long), code(long + "y")}; got[0] != 400 || got[1] != 429 {
		t.Errorf("over-long values: %v, want 400 then 429 (both count against the client's address)", got)
	}
	if code(strings.Repeat("x", maxKeyHeaderBytes)) != 200 {
		t.Error("a value of exactly the cap refused")
	}

	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("X-User-Id", "sk-secret-user")
	c, aerr := identify(gatewayconfig.KeyHeader, "X-User-Id", 64, r, "", trust{})
	if aerr != nil || strings.Contains(c.key, "secret") || !strings.HasPrefix(c.key, "h:") || c.id != "sk-secret-user" {
		t.Fatalf("header client %+v %v: the limiter key must be a hash of the value", c, aerr)
	}
}

// TestRefusedRequestsCountAgainstTheLimit: requests refused before admission (bad JSON, an
// unknown model, a body too large) use up the client's request limit like any other, so a
// flood of them gets 429; they cost no tokens.
func TestRefusedRequestsCountAgainstTheLimit(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, newClock(), basicConfig(e.srv.URL)+"maxRequestBodyBytes: 1024\n"+`rateLimit:
  policy: p
  limits: {requestsPerMinute: 3, tokensPerMinute: 100000}
`)
	var got []int
	for _, body := range []string{`{"model":`, `{"model":"gpt-4","messages":[{}]}`, `{"model":"x","pad":"` + strings.Repeat("x", 2000) + `"}`, chatBody} {
		resp := tg.post(t, "/v1/chat/completions", body)
		readAll(t, resp)
		got = append(got, resp.StatusCode)
	}
	if fmt.Sprint(got) != "[400 404 413 429]" {
		t.Fatalf("codes %v, want the three refusals to use up the limit of 3", got)
	}
	if e.calls.Load() != 0 {
		t.Fatal("the engine was called")
	}
	if n := waitMetric(t, tg.Gateway, 1, "qwen_gateway_rate_limited_total", "reason", "requests", "mode", "Enforce"); n != 1 {
		t.Errorf("rate_limited_total = %v", n)
	}
}

// TestRefusedRequestsWithoutPolicy: without a policy a refused request is just refused.
func TestRefusedRequestsWithoutPolicy(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, nil, basicConfig(e.srv.URL))
	for i := 0; i < 3; i++ {
		if resp := tg.post(t, "/v1/chat/completions", `{"model":`); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad JSON %d: %d", i, resp.StatusCode)
		}
	}
}
