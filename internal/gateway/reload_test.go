package gateway

import (
	"strings"
	"testing"
)

func TestBadReloadKeepsServing(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	good := basicConfig(e.srv.URL)
	tg := startGateway(t, nil, good)
	for _, bad := range []string{
		"upstream: {url: 'http://x', model: m}\nbreaker: {failureThreshold: -1}\n", // invalid
		"upstream: [",                                 // not YAML
		good + "surprise: true\n",                     // unknown field
		good + "auth: {keysDir: /nonexistent/keys}\n", // valid but unusable
	} {
		if err := tg.Load([]byte(bad)); err == nil {
			t.Fatalf("accepted %q", bad)
		}
		if resp := tg.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
			t.Fatalf("after a bad reload: %d %s", resp.StatusCode, readAll(t, resp))
		}
	}
	if got := metricValue(t, tg.Gateway, "qwen_gateway_config_reloads_total", "result", "failure"); got != 4 {
		t.Errorf("failures counted = %v", got)
	}
	if got := metricValue(t, tg.Gateway, "qwen_gateway_config_reloads_total", "result", "success"); got != 1 {
		t.Errorf("successes counted = %v", got)
	}
	if tg.Config().Upstream.URL != e.srv.URL {
		t.Error("config in force changed")
	}
}

func TestReloadKeepsLimiterStateUnlessLimitsChange(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	cfg := func(level, rpm string) string {
		return limitConfig(e.srv.URL, "  policy: p\n  limits: {requestsPerMinute: "+rpm+"}\n") + "degradation: {level: " + level + "}\n"
	}
	tg := startGateway(t, newClock(), cfg("0", "2"))
	code := func() int {
		resp := tg.post(t, "/v1/chat/completions", chatBody)
		readAll(t, resp)
		return resp.StatusCode
	}
	code()
	code()
	if err := tg.Load([]byte(cfg("2", "2"))); err != nil { // same limits, another level
		t.Fatal(err)
	}
	if c := code(); c != 429 {
		t.Fatalf("limiter state lost on a reload that kept the limits: %d", c)
	}
	if err := tg.Load([]byte(cfg("2", "5"))); err != nil { // new limit: a fresh count
		t.Fatal(err)
	}
	if c := code(); c != 200 {
		t.Fatalf("changed limit did not start afresh: %d", c)
	}
}

func TestReloadKeys(t *testing.T) {
	e := newFakeEngine(t, "engine-model")
	dir := t.TempDir()
	writeKey(t, dir, "a", "sk-a")
	tg := startGateway(t, nil, basicConfig(e.srv.URL)+"auth: {keysDir: "+dir+"}\n")
	if resp := tg.post(t, "/v1/chat/completions", chatBody, "Authorization", "Bearer sk-b"); resp.StatusCode != 401 {
		t.Fatalf("unknown key: %d", resp.StatusCode)
	}
	writeKey(t, dir, "b", "sk-b")
	if err := tg.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	resp := tg.post(t, "/v1/chat/completions", chatBody, "Authorization", "Bearer sk-b")
	if body := readAll(t, resp); resp.StatusCode != 200 || strings.Contains(body, "sk-") {
		t.Fatalf("new key: %d %s", resp.StatusCode, body)
	}
}
