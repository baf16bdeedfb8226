package gateway

import (
	"strings"
	"testing"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
	"github.com/qwenops/qwen-operator/internal/ratelimit"
)

func TestPolicyCompile(t *testing.T) {
	rl := &gatewayconfig.RateLimit{Policy: "p", Replicas: 4,
		Limits: gatewayconfig.Limits{RequestsPerMinute: 30, Burst: 10, TokensPerMinute: 6000, MaxConcurrentRequests: 2},
		Overrides: []gatewayconfig.Override{{Name: "vip", Keys: []string{"10.0.0.0/8"},
			Limits: gatewayconfig.Limits{RequestsPerMinute: 600, Burst: 10, TokensPerMinute: 6000, OutputTokensPerMinute: 2, MaxConcurrentRequests: 2}}}}
	rl.Default()
	p, err := newPolicy(rl)
	if err != nil {
		t.Fatal(err)
	}
	// Local limiting over 4 replicas: each gets a quarter, never less than 1.
	base := p.base
	if len(base.quotas) != 2 || base.quotas[0].rule != (ratelimit.Rule{Algorithm: ratelimit.Hybrid, Limit: 7, Window: 60e9, Burst: 2}) ||
		base.quotas[1].rule.Limit != 1500 || base.maxConcurrent != 1 {
		t.Fatalf("base tier %+v", base)
	}
	vip := p.overrides[0].t
	if vip.quotas[0].rule.Limit != 150 || vip.quotas[0].rule.Burst != 2 || vip.quotas[2].kind != kindOutputTokens || vip.quotas[2].rule.Limit != 1 {
		t.Fatalf("vip tier %+v", vip)
	}
	if got := p.tierFor(client{ip: mustPrefix("10.2.3.4").Addr()}); got != vip {
		t.Fatal("CIDR override not matched")
	}
	if got := p.tierFor(client{ip: mustPrefix("192.0.2.1").Addr()}); got != base {
		t.Fatal("override matched a stranger")
	}
	want := `"p";q=7;w=60, "p-tokens";q=1500;w=60, "p-concurrency";q=1;qu="concurrency"`
	if base.policyHeader != want {
		t.Fatalf("RateLimit-Policy\n got %s\nwant %s", base.policyHeader, want)
	}

	// With Redis the limits are global: no split.
	rl.Redis = &gatewayconfig.Redis{Address: "x:6379"}
	if p, err = newPolicy(rl); err != nil {
		t.Fatal(err)
	}
	if p.base.quotas[0].rule.Limit != 30 || p.base.maxConcurrent != 2 {
		t.Fatalf("redis tier %+v", p.base)
	}
}

// TestEstimate: the charge before a request runs counts every choice the engine generates
// (n, best_of) and, without a max, the policy's assumedMaxTokens per choice.
func TestEstimate(t *testing.T) {
	const assumed = 500
	req := &request{promptTokens: 100, maxTokens: 50, choices: 1}
	for _, tt := range []struct {
		name  string
		req   *request
		k     quotaKind
		limit int64
		want  int64
	}{
		{"requests", req, kindRequests, 10, 1},
		{"tokens", req, kindTokens, 1000, 150},
		{"clamped to the limit", req, kindTokens, 120, 120},
		{"input", req, kindInputTokens, 1000, 100},
		{"output", req, kindOutputTokens, 1000, 50},
		{"n=4", &request{promptTokens: 100, maxTokens: 50, choices: 4}, kindTokens, 10000, 300},
		{"no max: assumed", &request{promptTokens: 1, choices: 1}, kindOutputTokens, 10000, assumed},
		{"no max, n=3", &request{promptTokens: 1, choices: 3}, kindTokens, 10000, 1 + 3*assumed},
		{"huge n saturates at the limit", &request{promptTokens: 1, maxTokens: 1 << 40, choices: 1 << 40}, kindTokens, 1 << 30, 1 << 30},
	} {
		if got := estimate(tt.k, tt.req, assumed, tt.limit); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestPolicyRefusesRulesTheLimiterCannotHold: a limit × window beyond the limiters' exact
// range is refused when the config is compiled, naming the field, instead of failing every
// decision; the gateway keeps the last good config.
func TestPolicyRefusesRulesTheLimiterCannotHold(t *testing.T) {
	rl := &gatewayconfig.RateLimit{Policy: "p", Limits: gatewayconfig.Limits{TokensPerMinute: 18_000_000}}
	rl.Default()
	if _, err := newPolicy(rl); err != nil {
		t.Fatalf("18M tokens per minute (the API's maximum) refused: %v", err)
	}
	rl.Overrides = []gatewayconfig.Override{{Name: "vip", Keys: []string{"1.2.3.4"}, Limits: gatewayconfig.Limits{TokensPerMinute: 19_000_000}}}
	if _, err := newPolicy(rl); err == nil || !strings.Contains(err.Error(), "rateLimit.overrides[0].limits.tokensPerMinute") {
		t.Fatalf("19M tokens per minute: %v", err)
	}

	e := newFakeEngine(t, "engine-model")
	tg := startGateway(t, newClock(), limitConfig(e.srv.URL, "  policy: good\n  limits: {tokensPerMinute: 1000}\n"))
	if err := tg.Load([]byte(limitConfig(e.srv.URL, "  policy: bad\n  limits: {tokensPerMinute: 1000000000}\n"))); err == nil ||
		!strings.Contains(err.Error(), "rateLimit.limits.tokensPerMinute") {
		t.Fatalf("a tokensPerMinute of 1e9 loaded: %v", err)
	}
	if tg.Config().RateLimit.Policy != "good" {
		t.Fatal("the last good config no longer serves")
	}
	if resp := tg.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
		t.Fatalf("after the refused config: %d %s", resp.StatusCode, readAll(t, resp))
	}
}
