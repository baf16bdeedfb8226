package gateway

import (
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
	p := newPolicy(rl, ratelimit.NewMemory(ratelimit.MemoryOptions{}))
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
	p = newPolicy(rl, nil)
	if p.base.quotas[0].rule.Limit != 30 || p.base.maxConcurrent != 2 {
		t.Fatalf("redis tier %+v", p.base)
	}
}

func TestEstimate(t *testing.T) {
	req := &request{promptTokens: 100, maxTokens: 50}
	for _, tt := range []struct {
		k     quotaKind
		limit int64
		want  int64
	}{
		{kindRequests, 10, 1},
		{kindTokens, 1000, 150},
		{kindTokens, 120, 120}, // clamped to the limit
		{kindInputTokens, 1000, 100},
		{kindOutputTokens, 1000, 50},
	} {
		if got := estimate(tt.k, req, tt.limit); got != tt.want {
			t.Errorf("%s limit %d: %d, want %d", tt.k, tt.limit, got, tt.want)
		}
	}
	if got := estimate(kindOutputTokens, &request{promptTokens: 1}, 1000); got != 1 {
		t.Errorf("output estimate without max_tokens = %d, want 1", got)
	}
}
