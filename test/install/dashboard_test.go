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

// documented is docs/metrics.md: the labels of each metric the gateway and the operator serve
// (their tables: metric, type, labels), whether it is a histogram, and the engine series the
// "Read by the operator" table names. A dashboard expression may use only these, their
// histogram series and the DCGM exporter's DCGM_* series.
type documented struct {
	labels    map[string][]string
	histogram map[string]bool
	engine    map[string]bool
}

func readMetricsDoc(t *testing.T) documented {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "docs/metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	d := documented{labels: map[string][]string{}, histogram: map[string]bool{}, engine: map[string]bool{}}
	row := regexp.MustCompile("^\\| `(qwen_[a-z_]+)` \\| ([a-z]+) \\|([^|]*)\\|")
	quoted := regexp.MustCompile("`([A-Za-z_:]+)`")
	paren := regexp.MustCompile(`\([^)]*\)`)
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			d.labels[m[1]] = []string{}
			for _, l := range quoted.FindAllStringSubmatch(paren.ReplaceAllString(m[3], ""), -1) {
				d.labels[m[1]] = append(d.labels[m[1]], l[1])
			}
			d.histogram[m[1]] = m[2] == "histogram"
			continue
		}
		for _, m := range quoted.FindAllStringSubmatch(line, -1) {
			if strings.HasPrefix(m[1], "vllm:") || strings.HasPrefix(m[1], "sglang:") {
				d.engine[strings.TrimSuffix(m[1], "_bucket")] = true
			}
		}
	}
	if len(d.labels) < 13 || len(d.engine) < 6 {
		t.Fatalf("docs/metrics.md: read %d gateway and operator metrics and %d engine metrics", len(d.labels), len(d.engine))
	}
	return d
}

// known reports whether name is a documented metric (or one of its histogram series), an
// engine metric the operator reads, or a DCGM exporter metric.
func (d documented) known(name string) bool {
	if strings.HasPrefix(name, "DCGM_") || d.engine[name] {
		return true
	}
	if _, ok := d.labels[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && (d.histogram[base] || d.engine[base]) {
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
	Expr         string         `json:"expr"`
	RefID        string         `json:"refId"`
	LegendFormat string         `json:"legendFormat"`
	Datasource   *datasourceRef `json:"datasource"`
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
	for key, tg := range d.targets() {
		out[key] = tg.Expr
	}
	return out
}

// targets returns every panel query as "panel title/refId" -> target.
func (d dashboard) targets() map[string]target {
	out := map[string]target{}
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			out[p.Title+"/"+tg.RefID] = tg
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
// it has the namespace and QwenService variables, every expression names only metrics
// docs/metrics.md documents or DCGM metrics, and the seed's panels are all there.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	doc := readMetricsDoc(t)
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
			if !doc.known(m) {
				t.Errorf("variable %s reads %s, which docs/metrics.md does not list", name, m)
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
				if !doc.known(m) {
					t.Errorf("panel %q query %s uses %s, which is neither in docs/metrics.md nor DCGM_*: %s", p.Title, tg.RefID, m, tg.Expr)
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
	// (gateway and operator), breaker state, effective limit and active schedule; and the
	// engines' KV cache, queue and time to first token, vLLM's and SGLang's (docs/metrics.md);
	// the request classes, the gateway's queue and the response cache.
	for _, m := range []string{
		"qwen_gateway_requests_total", "qwen_gateway_request_duration_seconds_bucket",
		"qwen_gateway_time_to_first_token_seconds_bucket", "qwen_gateway_rate_limited_total",
		"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP",
		"qwen_gateway_tokens_total", "qwen_gateway_degradation_level", "qwen_operator_degradation_level",
		"qwen_gateway_upstream_circuit_state", "qwen_operator_effective_requests_per_minute", "qwen_operator_active_schedule_info",
		"vllm:kv_cache_usage_perc", "sglang:token_usage", "vllm:num_requests_waiting", "sglang:num_queue_reqs",
		"vllm:time_to_first_token_seconds_bucket", "sglang:time_to_first_token_seconds_bucket",
		"qwen_gateway_requests_by_class_total", "qwen_gateway_queue_wait_seconds_bucket",
		"qwen_gateway_queued_requests", "qwen_gateway_cache_lookups_total",
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
		"Request latency P50 / P95 / P99", "Time to first token P50 / P95 / P99", "Success rate", "Rate-limited requests per minute",
		"KV cache usage", "Queued requests", "Engine time to first token P95"} {
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
// (exported_namespace, exported_pod), the engine serving vLLM's metrics and the fallback
// SGLang's, and the operator's series. Every qwen_* series has exactly the labels
// docs/metrics.md gives it (TestFixtureMatchesMetricsDoc), plus the namespace and pod the scrape adds.
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
	p(`qwen_gateway_requests_total{%s,model="Qwen3-1.7B",code="200",level="0",upstream="primary"} %d`, gw, 10*n)
	p(`qwen_gateway_requests_total{%s,model="Qwen3-1.7B",code="429",level="0",upstream=""} %d`, gw, 2*n)
	p(`qwen_gateway_requests_total{%s,model="Qwen3-1.7B",code="503",level="0",upstream="static"} %d`, gw, n)
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
	p("# TYPE qwen_gateway_cache_lookups_total counter")
	for _, r := range []string{"hit", "miss", "error"} {
		p(`qwen_gateway_cache_lookups_total{%s,result=%q} %d`, gw, r, n)
	}
	p("# TYPE qwen_gateway_cache_stored_bytes_total counter")
	p(`qwen_gateway_cache_stored_bytes_total{%s} %d`, gw, 1000*n)
	p("# TYPE qwen_gateway_cache_bytes gauge")
	p(`qwen_gateway_cache_bytes{%s} 4096`, gw)
	p("# TYPE qwen_gateway_limiter_backend_errors_total counter")
	p(`qwen_gateway_limiter_backend_errors_total{%s} %d`, gw, n)
	p("# TYPE qwen_gateway_requests_by_class_total counter")
	p(`qwen_gateway_requests_by_class_total{%s,class="Standard",level="1"} %d`, gw, 8*n)
	p(`qwen_gateway_requests_by_class_total{%s,class="Sheddable",level="2"} %d`, gw, 2*n)
	p("# TYPE qwen_gateway_queue_wait_seconds histogram")
	for i, le := range []string{"0.1", "0.5", "1", "5", "+Inf"} {
		p(`qwen_gateway_queue_wait_seconds_bucket{%s,class="Standard",le="%s"} %d`, gw, le, (i+1)*n)
	}
	p(`qwen_gateway_queue_wait_seconds_sum{%s,class="Standard"} %d`, gw, 2*n)
	p(`qwen_gateway_queue_wait_seconds_count{%s,class="Standard"} %d`, gw, 5*n)
	p("# TYPE qwen_gateway_queued_requests gauge")
	p(`qwen_gateway_queued_requests{%s} 2`, gw)
	p("# TYPE qwen_gateway_config_reloads_total counter")
	p(`qwen_gateway_config_reloads_total{%s,result="success"} 1`, gw)
	p(`qwen_gateway_config_reloads_total{%s,result="failure"} 0`, gw)
	p("# TYPE qwen_operator_effective_requests_per_minute gauge")
	p(`qwen_operator_effective_requests_per_minute{%s,policy="qwen3-limits"} 50`, op)
	p("# TYPE qwen_operator_active_schedule_info gauge")
	p(`qwen_operator_active_schedule_info{%s,policy="qwen3-limits",schedule="daytime"} 1`, op)
	p("# TYPE qwen_operator_degradation_level gauge")
	p(`qwen_operator_degradation_level{%s,plan="qwen3-degrade"} 1`, op)
	p("# TYPE qwen_operator_telemetry_query_errors_total counter")
	p(`qwen_operator_telemetry_query_errors_total{%s,reason="PrometheusUnavailable"} 0`, op)
	engine := `namespace="ai",pod="` + fixtureEnginePod + `",model_name="Qwen3-1.7B"`
	sglang := `namespace="ai",pod="` + fixtureFallback + `",model_name="Qwen3-0.6B"`
	p("# TYPE vllm:kv_cache_usage_perc gauge")
	p(`vllm:kv_cache_usage_perc{%s} 0.42`, engine)
	p("# TYPE vllm:num_requests_waiting gauge")
	p(`vllm:num_requests_waiting{%s} 3`, engine)
	p("# TYPE sglang:token_usage gauge")
	p(`sglang:token_usage{%s} 0.3`, sglang)
	p("# TYPE sglang:num_queue_reqs gauge")
	p(`sglang:num_queue_reqs{%s} 1`, sglang)
	for _, h := range []struct{ name, labels string }{{"vllm:time_to_first_token_seconds", engine}, {"sglang:time_to_first_token_seconds", sglang}} {
		p("# TYPE %s histogram", h.name)
		for i, le := range []string{"0.1", "0.5", "1", "+Inf"} {
			p(`%s_bucket{%s,le="%s"} %d`, h.name, h.labels, le, (i+1)*3*n)
		}
		p(`%s_sum{%s} %d`, h.name, h.labels, 2*n)
		p(`%s_count{%s} %d`, h.name, h.labels, 12*n)
	}
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

	t.Run("every grouping label exists", func(t *testing.T) { checkGroupingLabels(t, prom, loadDashboard(t)) })

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

var (
	promGrouping = regexp.MustCompile(`\b(by|on|group_left|group_right)\s*\(([^)]*)\)`)
	legendLabel  = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)
	// labelReplaceDst finds the destination of label_replace(v, "dst", "replacement", "src", "regex").
	labelReplaceDst = regexp.MustCompile(`,\s*"(\w+)"\s*,\s*"[^"]*"\s*,\s*"\w+"\s*,\s*"`)
)

// missingLabels returns the labels an expression groups or matches by (by, on, group_left,
// group_right) or its legend shows, that none of its metrics carries (labelsOf gives the label
// names of a metric's series) and no label_replace in it creates. Such a panel shows one
// unlabelled series, or nothing where a join should match.
func missingLabels(expr, legend string, labelsOf func(metric string) map[string]bool) []string {
	have := map[string]bool{}
	for _, m := range labelReplaceDst.FindAllStringSubmatch(expr, -1) {
		have[m[1]] = true
	}
	for _, m := range metricNames(expr) {
		for l := range labelsOf(m) {
			have[l] = true
		}
	}
	var want []string
	for _, m := range promGrouping.FindAllStringSubmatch(promString.ReplaceAllString(expr, `""`), -1) {
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				want = append(want, l)
			}
		}
	}
	for _, m := range legendLabel.FindAllStringSubmatch(legend, -1) {
		want = append(want, m[1])
	}
	var missing []string
	for _, l := range want {
		if !have[l] && !slices.Contains(missing, l) {
			missing = append(missing, l)
		}
	}
	return missing
}

// checkGroupingLabels runs missingLabels on every panel query against the label names the
// fixture's series have in Prometheus, after checking it catches the mistake it is for: a
// panel that grouped the effective limit by a schedule label that metric never had.
func checkGroupingLabels(t *testing.T, prom *promServer, d dashboard) {
	cache := map[string]map[string]bool{}
	labelsOf := func(metric string) map[string]bool {
		if l, ok := cache[metric]; ok {
			return l
		}
		names, err := prom.labelNames(metric)
		if err != nil {
			t.Fatalf("label names of %s: %v", metric, err)
		}
		cache[metric] = names
		return names
	}
	if got := missingLabels(`max by (policy, schedule) (qwen_operator_effective_requests_per_minute{policy=~"$policy"})`, "{{policy}}", labelsOf); !slices.Equal(got, []string{"schedule"}) {
		t.Fatalf("the check misses a grouping by a label the metric lacks: %v", got)
	}
	if got := missingLabels(`sum by (code) (rate(x_total[1m]))`, "{{reason}}", func(string) map[string]bool { return map[string]bool{"code": true} }); !slices.Equal(got, []string{"reason"}) {
		t.Fatalf("the check misses a legend label the metric lacks: %v", got)
	}
	for key, tg := range d.targets() {
		if missing := missingLabels(tg.Expr, tg.LegendFormat, labelsOf); len(missing) > 0 {
			t.Errorf("%s groups by or shows %v, which none of its metrics %v has: %s (legend %q)", key, missing, metricNames(tg.Expr), tg.Expr, tg.LegendFormat)
		}
	}
}

// TestFixtureMatchesMetricsDoc checks the dashboard fixture's qwen_* series carry exactly the
// labels docs/metrics.md gives each metric (plus the namespace and pod the scrape adds, and le
// on histogram buckets), so the grouping check above is against the labels production serves.
func TestFixtureMatchesMetricsDoc(t *testing.T) {
	doc := readMetricsDoc(t)
	series := regexp.MustCompile(`^(qwen_[a-z_]+)\{([^}]*)\}`)
	seen := map[string]bool{}
	for _, line := range strings.Split(fixtureMetrics(1), "\n") {
		m := series.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := m[1]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && doc.histogram[base] {
				name = base
			}
		}
		want, ok := doc.labels[name]
		if !ok {
			t.Errorf("the fixture serves %s, which docs/metrics.md does not list", name)
			continue
		}
		seen[name] = true
		var got []string
		for _, kv := range strings.Split(m[2], ",") {
			if l, _, _ := strings.Cut(kv, "="); l != "namespace" && l != "pod" && l != "le" {
				got = append(got, l)
			}
		}
		slices.Sort(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Errorf("fixture %s has labels %v, docs/metrics.md says %v", line, got, want)
		}
	}
	for name := range doc.labels {
		if !seen[name] {
			t.Errorf("the fixture serves no %s", name)
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

// labelNames returns the label names of the series of metric.
func (p *promServer) labelNames(metric string) (map[string]bool, error) {
	resp, err := http.Get(p.url + "/api/v1/series?" + url.Values{"match[]": {metric}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string              `json:"status"`
		Data   []map[string]string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, s := range body.Data {
		for l := range s {
			names[l] = true
		}
	}
	return names, nil
}

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
