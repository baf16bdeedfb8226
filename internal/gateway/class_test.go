package gateway

import (
	"fmt"
	"net/http"
	"testing"
)

// TestClassLevels: at level 0 nobody is degraded; above it Standard gets the level,
// Sheddable sheddableAhead more (at most 4), Critical at most criticalMax.
func TestClassLevels(t *testing.T) {
	for _, c := range []struct {
		level, criticalMax, ahead int
		want                      [3]int // Critical, Standard, Sheddable
	}{
		{0, 2, 1, [3]int{0, 0, 0}},
		{1, 2, 1, [3]int{1, 1, 2}},
		{2, 2, 1, [3]int{2, 2, 3}},
		{3, 2, 1, [3]int{2, 3, 4}},
		{4, 2, 1, [3]int{2, 4, 4}},
		{3, 0, 0, [3]int{0, 3, 3}},
		{1, 4, 4, [3]int{1, 1, 4}},
	} {
		st := &state{level: c.level, criticalMax: c.criticalMax, sheddableAhead: c.ahead}
		got := [3]int{st.levelFor(classCritical), st.levelFor(classStandard), st.levelFor(classSheddable)}
		if got != c.want {
			t.Errorf("level %d, criticalMax %d, ahead %d: Critical, Standard, Sheddable get %v, want %v", c.level, c.criticalMax, c.ahead, got, c.want)
		}
	}
}

// TestCriticalityPerTier: the policy's tiers assign classes (per API key), and the plan's level
// 3 applies per class: Critical stays at its ceiling L2 (thinking off, the primary engine),
// Standard gets L3 (no fallback, so as L2), Sheddable L4 (the static reply). Each response
// says its class and level, and requests_by_class_total counts them.
func TestCriticalityPerTier(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	dir := t.TempDir()
	writeKey(t, dir, "ops", "sk-ops")
	writeKey(t, dir, "app", "sk-app")
	writeKey(t, dir, "batch", "sk-batch")
	tg := startGateway(t, nil, basicConfig(e.srv.URL)+fmt.Sprintf(`auth: {keysDir: %q}
degradation: {level: 3, staticResponse: {message: busy}}
rateLimit:
  policy: p
  key: {source: APIKey}
  limits: {requestsPerMinute: 100}
  overrides:
  - {name: ops, keys: [ops], criticality: Critical, limits: {requestsPerMinute: 100}}
  - {name: batch, keys: [batch], criticality: Sheddable, limits: {requestsPerMinute: 100}}
`, dir))
	for _, c := range []struct{ key, class, level, upstream string }{
		{"sk-ops", "Critical", "2", "primary"},
		{"sk-app", "Standard", "3", "primary"},
		{"sk-batch", "Sheddable", "4", "static"},
	} {
		resp := tg.post(t, "/v1/chat/completions", chatBody, "Authorization", "Bearer "+c.key)
		readAll(t, resp)
		got := []string{resp.Header.Get(criticalityHeader), resp.Header.Get("X-Qwen-Degradation-Level"), resp.Header.Get("X-Qwen-Upstream")}
		if fmt.Sprint(got) != fmt.Sprint([]string{c.class, c.level, c.upstream}) || resp.StatusCode != 200 {
			t.Errorf("%s: %d class, level, upstream %v, want %s %s %s", c.key, resp.StatusCode, got, c.class, c.level, c.upstream)
		}
		if n := waitMetric(t, tg.Gateway, 1, "qwen_gateway_requests_by_class_total", "class", c.class, "level", c.level); n != 1 {
			t.Errorf("requests_by_class_total{class=%s,level=%s} = %v", c.class, c.level, n)
		}
	}
	if calls := e.calls.Load(); calls != 2 {
		t.Errorf("engine called %d times, want 2 (the Sheddable request got the static reply)", calls)
	}
	if th, ok := e.lastBody()["chat_template_kwargs"].(map[string]any); !ok || th["enable_thinking"] != false {
		t.Errorf("the Standard request at L3 without a fallback kept thinking: %v", e.lastBody())
	}
}

// TestCriticalityHeaderOnlyFromTrustedProxies: the policy's criticality header sets a
// request's class only on a connection from a trusted proxy; from anyone else it is ignored,
// and a trusted header naming no class is a 400 naming the header.
func TestCriticalityHeaderOnlyFromTrustedProxies(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	policy := `rateLimit:
  policy: p
  criticalityHeader: X-Qwen-Criticality
  limits: {requestsPerMinute: 100}
`
	trusted := startGateway(t, nil, basicConfig(e.srv.URL)+"trustedProxies: [127.0.0.1]\n"+policy)
	untrusted := startGateway(t, nil, basicConfig(e.srv.URL)+"trustedProxies: [192.0.2.1]\n"+policy)
	noProxies := startGateway(t, nil, basicConfig(e.srv.URL)+policy)
	for _, c := range []struct {
		name string
		tg   *testGateway
		want string
	}{{"trusted", trusted, "Sheddable"}, {"untrusted", untrusted, "Standard"}, {"no trusted proxies", noProxies, "Standard"}} {
		resp := c.tg.post(t, "/v1/chat/completions", chatBody, "X-Qwen-Criticality", "sheddable")
		readAll(t, resp)
		if got := resp.Header.Get(criticalityHeader); resp.StatusCode != 200 || got != c.want {
			t.Errorf("%s: %d class %q, want %s", c.name, resp.StatusCode, got, c.want)
		}
	}
	resp := trusted.post(t, "/v1/chat/completions", chatBody, "X-Qwen-Criticality", "VIP")
	body := readAll(t, resp)
	if _, _, param, _ := openAIError(t, body); resp.StatusCode != http.StatusBadRequest || param != "X-Qwen-Criticality" {
		t.Errorf("bad class from a trusted proxy: %d %s", resp.StatusCode, body)
	}
}
