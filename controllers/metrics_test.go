package controllers

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
	"github.com/qwenops/qwen-operator/internal/testutil/tools"
)

// TestPolicyMetricsFollowTheSchedule: the active schedule is one info series per policy that
// moves with the schedule, "(base)" between schedules, and goes with the effective limit.
func TestPolicyMetricsFollowTheSchedule(t *testing.T) {
	const policy = "ai/metrics-test"
	eff := &v1alpha1.EffectivePolicy{Limits: v1alpha1.LimitSet{RequestsPerMinute: ptr.To(int32(50))}}
	for _, step := range []struct {
		eff      *v1alpha1.EffectivePolicy
		schedule string
		want     string
	}{
		{eff, "daytime", `qwen_operator_active_schedule_info{policy="ai/metrics-test",schedule="daytime"} 1`},
		{eff, "night", `qwen_operator_active_schedule_info{policy="ai/metrics-test",schedule="night"} 1`},
		{eff, "", `qwen_operator_active_schedule_info{policy="ai/metrics-test",schedule="(base)"} 1`},
		{nil, "", ""},
	} {
		setPolicyMetrics(policy, step.eff, step.schedule)
		got := seriesOf(t, activeSchedule, policy)
		if want := strings.Fields(step.want); !slices.Equal(got, want) {
			t.Errorf("schedule %q: series %v, want %v", step.schedule, got, want)
		}
		rpm := seriesOf(t, effectiveRPM, policy)
		if (step.eff != nil) != (len(rpm) == 2 && rpm[1] == "50") {
			t.Errorf("schedule %q: effective rpm series %v", step.schedule, rpm)
		}
	}
}

// seriesOf is the exposition of c's series of policy ("name{labels}", "value", ...).
func seriesOf(t *testing.T, c prometheus.Collector, policy string) []string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			mine := false
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
				mine = mine || l.GetName() == "policy" && l.GetValue() == policy
			}
			if mine {
				out = append(out, f.GetName()+"{"+strings.Join(labels, ",")+"}", strconv.FormatFloat(m.GetGauge().GetValue(), 'g', -1, 64))
			}
		}
	}
	return out
}

// TestOperatorMetricsAreDocumented checks each operator metric's labels against the table in
// docs/metrics.md, which the dashboard test checks its fixture and panels against.
func TestOperatorMetricsAreDocumented(t *testing.T) {
	root, err := tools.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{}
	row := regexp.MustCompile("^\\| `(qwen_operator_[a-z_]+)` \\| [a-z]+ \\|([^|]*)\\|")
	label := regexp.MustCompile("`([a-z_]+)`")
	paren := regexp.MustCompile(`\([^)]*\)`)
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			var labels []string
			for _, l := range label.FindAllStringSubmatch(paren.ReplaceAllString(m[2], ""), -1) {
				labels = append(labels, l[1])
			}
			documented[m[1]] = labels
		}
	}
	for _, c := range []prometheus.Collector{effectiveRPM, activeSchedule, degradationLevel, telemetryQueryErrors} {
		name, labels := describe(t, c)
		want, ok := documented[name]
		if !ok {
			t.Errorf("%s is not in docs/metrics.md", name)
			continue
		}
		if !slices.Equal(labels, want) {
			t.Errorf("%s has labels %v, docs/metrics.md says %v", name, labels, want)
		}
		delete(documented, name)
	}
	for name := range documented {
		t.Errorf("docs/metrics.md lists %s, which the operator does not serve", name)
	}
}

// describe returns a collector's metric name and variable labels, from its Desc.
func describe(t *testing.T, c prometheus.Collector) (string, []string) {
	t.Helper()
	ch := make(chan *prometheus.Desc, 1)
	c.Describe(ch)
	d := (<-ch).String()
	name := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d)
	vars := regexp.MustCompile(`variableLabels: \{([^}]*)\}`).FindStringSubmatch(d)
	if name == nil || vars == nil {
		t.Fatalf("cannot read %s", d)
	}
	var labels []string
	for _, l := range strings.Split(vars[1], ",") {
		if l = strings.TrimSpace(l); l != "" {
			labels = append(labels, l)
		}
	}
	return name[1], labels
}
