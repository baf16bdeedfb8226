package install

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qwenops/qwen-operator/internal/testutil/promtest"
)

// apiMetrics are the metrics the design's API reference (API.md, "The gateway" and operator
// metrics) names; a dashboard expression may use only these, their histogram series and the
// DCGM exporter's DCGM_* series.
var apiMetrics = map[string]bool{
	"qwen_gateway_requests_total":                 false,
	"qwen_gateway_request_duration_seconds":       true, // histogram
	"qwen_gateway_time_to_first_token_seconds":    true, // histogram
	"qwen_gateway_rate_limited_total":             false,
	"qwen_gateway_tokens_total":                   false,
	"qwen_gateway_inflight_requests":              false,
	"qwen_gateway_degradation_level":              false,
	"qwen_gateway_upstream_circuit_state":         false,
	"qwen_gateway_limiter_backend_errors_total":   false,
	"qwen_gateway_config_reloads_total":           false,
	"qwen_operator_effective_requests_per_minute": false,
	"qwen_operator_degradation_level":             false,
	"qwen_operator_telemetry_query_errors_total":  false,
}

// knownMetric reports whether name is an API.md metric (or one of its histogram series) or a
// DCGM exporter metric.
func knownMetric(name string) bool {
	if strings.HasPrefix(name, "DCGM_") {
		return true
	}
	if _, ok := apiMetrics[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && apiMetrics[base] {
			return true
		}
	}
	return false
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []target       `json:"targets"`
	Panels     []panel        `json:"panels"` // a collapsed row's panels
}

type target struct {
	Expr       string         `json:"expr"`
	RefID      string         `json:"refId"`
	Datasource *datasourceRef `json:"datasource"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Regex      string          `json:"regex"`
	AllValue   string          `json:"allValue"`
	IncludeAll bool            `json:"includeAll"`
}

// loadDashboard parses config/grafana/qwen-operator-dashboard.json.
func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s is not a Grafana dashboard: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// queries returns every panel query as "panel title/refId" -> expression.
func (d dashboard) queries() map[string]string {
	out := map[string]string{}
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			out[p.Title+"/"+tg.RefID] = tg.Expr
		}
	}
	return out
}

var (
	promString  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promVar     = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	promBraces  = regexp.MustCompile(`\{[^}]*\}`)
	promRange   = regexp.MustCompile(`\[[^\]]*\]`)
	promGroup   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent   = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeyword = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true, "atan2": true}
)

// metricNames returns the metric names a PromQL expression selects: identifiers that are not
// inside strings, label matchers, ranges or grouping clauses, not keywords and not calls.
func metricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promVar.ReplaceAllString(s, "")
	s = promBraces.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGroup.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(s[loc[0]-1:loc[0]], "0123456789.") {
			continue // a number such as 1e3
		}
		if promKeyword[name] || strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "(") {
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (code) (rate(qwen_gateway_requests_total{pod=~"${service}-gateway-.+"}[$__rate_interval]))`: {"qwen_gateway_requests_total"},
		`histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="y"}[5m])))`:                                 {"a_bucket"},
		`sum by (d) (rate(a[1m])) / ignoring (d) group_left () sum(rate(b{code=~"2.."}[1m]))`:               {"a", "b"},
		`count(x == 2) or vector(0)`:                                              {"x"},
		`label_replace(m, "dst", "$1", "pod", "(.+)-gateway")`:                    {"m"},
		`DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) * 1e3`: {"DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"},
		`sum without (pod) (up) > bool 0 unless on (job) absent_metric`:           {"up", "absent_metric"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v, want %v", expr, got, want)
		}
	}
}

// TestDashboard checks the dashboard's structure: it parses, its data source is a variable,
// it has the namespace and QwenService variables, every expression names only API.md or DCGM
// metrics, and the seed's panels are all there.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q", d.UID, d.Title)
	}
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || string(v.Query) != `"prometheus"` {
		t.Errorf("no Prometheus datasource variable: %+v", v)
	}
	for _, name := range []string{"namespace", "service", "policy", "plan"} {
		v, ok := vars[name]
		if !ok || v.Type != "query" || !v.IncludeAll || v.AllValue == "" {
			t.Errorf("variable %s: %+v", name, v)
			continue
		}
		sel, _, ok := strings.Cut(strings.TrimPrefix(v.Definition, "label_values("), ",")
		if !strings.HasPrefix(v.Definition, "label_values(") || !ok {
			t.Errorf("variable %s query %q is not label_values(metric, label)", name, v.Definition)
			continue
		}
		for _, m := range metricNames(sel) {
			if !knownMetric(m) {
				t.Errorf("variable %s reads %s, which API.md does not list", name, m)
			}
		}
	}

	used := map[string]bool{}
	queries := d.queries()
	if len(queries) < 20 {
		t.Errorf("only %d queries", len(queries))
	}
	for _, p := range allPanels(d.Panels) {
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q datasource %+v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s datasource %+v", p.Title, tg.RefID, tg.Datasource)
			}
			names := metricNames(tg.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q query %s names no metric: %s", p.Title, tg.RefID, tg.Expr)
			}
			for _, m := range names {
				used[m] = true
				if !knownMetric(m) {
					t.Errorf("panel %q query %s uses %s, which is neither in API.md nor DCGM_*: %s", p.Title, tg.RefID, m, tg.Expr)
				}
			}
			for _, v := range promVar.FindAllString(tg.Expr, -1) {
				name := strings.Trim(v, "${}")
				name, _, _ = strings.Cut(name, ":")
				if _, ok := vars[name]; !ok && !strings.HasPrefix(name, "__") && !regexp.MustCompile(`^\d+$`).MatchString(name) {
					t.Errorf("panel %q query %s uses undefined variable %s", p.Title, tg.RefID, v)
				}
			}
		}
	}
	// The seed's panels: request rate and success rate, P50/P95/P99, time to first token,
	// rate-limited count, GPU utilisation/memory/temperature, tokens in/out, degradation level
	// (gateway and operator), breaker state, effective limit and active schedule.
	for _, m := range []string{
		"qwen_gateway_requests_total", "qwen_gateway_request_duration_seconds_bucket",
		"qwen_gateway_time_to_first_token_seconds_bucket", "qwen_gateway_rate_limited_total",
		"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP",
		"qwen_gateway_tokens_total", "qwen_gateway_degradation_level", "qwen_operator_degradation_level",
		"qwen_gateway_upstream_circuit_state", "qwen_operator_effective_requests_per_minute",
	} {
		if !used[m] {
			t.Errorf("no panel uses %s", m)
		}
	}
	titles := map[string]bool{}
	for _, p := range allPanels(d.Panels) {
		titles[p.Title] = true
	}
	for _, title := range []string{"Active schedule and effective limit", "Circuit breaker state", "Degradation level",
		"Request latency P50 / P95 / P99", "Time to first token P50 / P95 / P99", "Success rate", "Rate-limited requests per minute"} {
		if !titles[title] {
			t.Errorf("no panel %q", title)
		}
	}

	// The QwenService variable extracts the name from gateway pod names.
	re := regexp.MustCompile(strings.Trim(vars["service"].Regex, "/"))
	if m := re.FindStringSubmatch(fixtureGatewayPod); m == nil || m[1] != "qwen3" {
		t.Errorf("service variable regex %s on %s: %v", vars["service"].Regex, fixtureGatewayPod, m)
	}
}

// Fixture series: one QwenService "qwen3" in namespace "ai" with one gateway pod, an engine GPU
// scraped with pod mapping (namespace, pod) and a fallback GPU scraped without honor_labels
// (exported_namespace, exported_pod), and the operator's series.
const (
	fixtureGatewayPod = "qwen3-gateway-7d9f8b6c5d-x2x4z"
	fixtureEnginePod  = "qwen3-engine-5f6d7c8b9-abcde"
	fixtureFallback   = "qwen3-fallback-6c7d8e9f0-fghij"
)

// fixtureMetrics is the exposition text of the n-th scrape; counters grow with n.
func fixtureMetrics(n int) string {
	var b strings.Builder
	gw := `namespace="ai",pod="` + fixtureGatewayPod + `"`
	op := `namespace="qwen-operator-system",pod="qwen-operator-6b8d9c7f5-k2l3m"`
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# TYPE qwen_gateway_requests_total counter")
	p(`qwen_gateway_requests_total{%s,model="Qwen3-1.7B",code="200",level="0"} %d`, gw, 10*n)
	p(`qwen_gateway_requests_total{%s,model="Qwen3-1.7B",code="429",level="0"} %d`, gw, 2*n)
	p(`qwen_gateway_requests_total{%s,model="Qwen3-1.7B",code="503",level="0"} %d`, gw, n)
	for _, h := range []string{"qwen_gateway_request_duration_seconds", "qwen_gateway_time_to_first_token_seconds"} {
		p("# TYPE %s histogram", h)
		for i, le := range []string{"0.1", "0.5", "1", "5", "+Inf"} {
			p(`%s_bucket{%s,model="Qwen3-1.7B",le="%s"} %d`, h, gw, le, (i+1)*2*n)
		}
		p(`%s_sum{%s,model="Qwen3-1.7B"} %d`, h, gw, 15*n)
		p(`%s_count{%s,model="Qwen3-1.7B"} %d`, h, gw, 10*n)
	}
	p("# TYPE qwen_gateway_rate_limited_total counter")
	p(`qwen_gateway_rate_limited_total{%s,reason="requests",mode="Enforce"} %d`, gw, 2*n)
	p(`qwen_gateway_rate_limited_total{%s,reason="tokens",mode="Shadow"} %d`, gw, n)
	p("# TYPE qwen_gateway_tokens_total counter")
	p(`qwen_gateway_tokens_total{%s,direction="input"} %d`, gw, 120*n)
	p(`qwen_gateway_tokens_total{%s,direction="output"} %d`, gw, 340*n)
	p("# TYPE qwen_gateway_inflight_requests gauge")
	p(`qwen_gateway_inflight_requests{%s} 3`, gw)
	p("# TYPE qwen_gateway_degradation_level gauge")
	p(`qwen_gateway_degradation_level{%s} 1`, gw)
	p("# TYPE qwen_gateway_upstream_circuit_state gauge")
	p(`qwen_gateway_upstream_circuit_state{%s,upstream="primary"} 2`, gw)
	p(`qwen_gateway_upstream_circuit_state{%s,upstream="fallback"} 0`, gw)
	p("# TYPE qwen_gateway_limiter_backend_errors_total counter")
	p(`qwen_gateway_limiter_backend_errors_total{%s} %d`, gw, n)
	p("# TYPE qwen_gateway_config_reloads_total counter")
	p(`qwen_gateway_config_reloads_total{%s,result="success"} 1`, gw)
	p(`qwen_gateway_config_reloads_total{%s,result="failure"} 0`, gw)
	p("# TYPE qwen_operator_effective_requests_per_minute gauge")
	p(`qwen_operator_effective_requests_per_minute{%s,policy="qwen3-limits"} 50`, op)
	p("# TYPE qwen_operator_degradation_level gauge")
	p(`qwen_operator_degradation_level{%s,plan="qwen3-degrade"} 1`, op)
	p("# TYPE qwen_operator_telemetry_query_errors_total counter")
	p(`qwen_operator_telemetry_query_errors_total{%s} 0`, op)
	mapped := `gpu="0",namespace="ai",pod="` + fixtureEnginePod + `"`
	exported := `gpu="0",namespace="gpu-operator",pod="nvidia-dcgm-exporter-5xk2p",exported_namespace="ai",exported_pod="` + fixtureFallback + `"`
	for _, m := range []struct {
		name  string
		value int
	}{{"DCGM_FI_DEV_GPU_UTIL", 87}, {"DCGM_FI_DEV_FB_USED", 20000}, {"DCGM_FI_DEV_FB_FREE", 4000}, {"DCGM_FI_DEV_GPU_TEMP", 78}} {
		p("# TYPE %s gauge", m.name)
		p(`%s{%s} %d`, m.name, mapped, m.value)
		p(`%s{%s} %d`, m.name, exported, m.value)
	}
	return b.String()
}

// TestDashboardQueriesRun runs every panel query, with its variables filled in as Grafana does,
// against a real Prometheus scraping fixture series: each query must parse and, with "All"
// selected, return data (the GPU panels from both DCGM label styles); with another QwenService
// selected, the QwenService-scoped panels must return nothing.
func TestDashboardQueriesRun(t *testing.T) {
	var scrapes atomic.Int64
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, fixtureMetrics(int(scrapes.Add(1))))
	}))
	t.Cleanup(exporter.Close)
	// The fixture's own namespace and pod labels do not clash with the target's (job,
	// instance), so they are stored as served, like pod-mapped series.
	prom := &promServer{url: promtest.Start(t, strings.TrimPrefix(exporter.URL, "http://")).URL()}

	// Wait until rates have two samples in their window.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res, err := prom.query(`rate(qwen_gateway_requests_total[1m])`); err == nil && len(res) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus has no rate of the fixture series after 60s (%d scrapes)", scrapes.Load())
		}
		time.Sleep(500 * time.Millisecond)
	}

	d := loadDashboard(t)
	builtins := map[string]string{"__rate_interval": "1m", "__range": "5m", "__interval": "15s"}
	all := map[string]string{"namespace": ".*", "service": ".+", "policy": ".*", "plan": ".*"}
	one := map[string]string{"namespace": "ai", "service": "qwen3", "policy": "qwen3-limits", "plan": "qwen3-degrade"}
	other := map[string]string{"namespace": "ai", "service": "nope", "policy": "nope", "plan": "nope"}
	for key, expr := range d.queries() {
		for _, sel := range []struct {
			name string
			vars map[string]string
		}{{"all", all}, {"qwen3", one}, {"nope", other}} {
			q := interpolate(t, expr, sel.vars, builtins)
			res, err := prom.query(q)
			if err != nil {
				t.Errorf("%s (%s): %v\n%s", key, sel.name, err, q)
				continue
			}
			scoped := strings.Contains(expr, "$service") || strings.Contains(expr, "${service}") ||
				strings.Contains(expr, "$policy") || strings.Contains(expr, "$plan")
			switch {
			case sel.name == "nope" && scoped && !strings.Contains(expr, "vector("):
				if len(res) != 0 {
					t.Errorf("%s with another QwenService selected returns %d series: %s", key, len(res), q)
				}
			case sel.name != "nope" && len(res) == 0:
				t.Errorf("%s (%s) returns nothing: %s", key, sel.name, q)
			case sel.name != "nope" && strings.Contains(expr, "DCGM_") && len(res) != 2:
				t.Errorf("%s (%s) returns %d series, want the engine's (pod) and the fallback's (exported_pod): %s", key, sel.name, len(res), q)
			}
		}
	}
}

var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// interpolate replaces Grafana variables; an unknown one fails the test. "$1" (a regex group
// in label_replace) is left alone, as Grafana leaves it.
func interpolate(t *testing.T, expr string, vars, builtins map[string]string) string {
	t.Helper()
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := builtins[name]; ok {
			return v
		}
		if regexp.MustCompile(`^\d+$`).MatchString(name) {
			return m
		}
		t.Errorf("unknown variable %s in %s", m, expr)
		return m
	})
}

// promServer is the HTTP API of a running prometheus.
type promServer struct{ url string }

// query runs an instant query and returns the result series (or an error naming Prometheus'
// complaint, e.g. a parse error).
func (p *promServer) query(q string) ([]json.RawMessage, error) {
	resp, err := http.PostForm(p.url+"/api/v1/query", url.Values{"query": {q}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s", body.Error)
	}
	if body.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", body.Data.ResultType)
	}
	return body.Data.Result, nil
}
