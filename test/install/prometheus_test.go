package install

import (
	"os"
	"regexp"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestPrometheusExamples checks the example scrape configuration and PodMonitor parse, and that
// their relabelling regexes compile. (Debian's prometheus/promtool are built without Kubernetes
// service discovery, so `promtool check config` cannot read the example.)
func TestPrometheusExamples(t *testing.T) {
	b, err := os.ReadFile(repoPath(t, "config/prometheus/prometheus.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName        string `json:"job_name"`
			RelabelConfigs []struct {
				SourceLabels []string `json:"source_labels"`
				Regex        string   `json:"regex"`
				Action       string   `json:"action"`
				TargetLabel  string   `json:"target_label"`
			} `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		for _, rc := range sc.RelabelConfigs {
			if _, err := regexp.Compile("^(?:" + rc.Regex + ")$"); err != nil {
				t.Errorf("job %s: regex %q: %v", sc.JobName, rc.Regex, err)
			}
			if rc.Action != "" && rc.Action != "keep" && rc.Action != "drop" && rc.Action != "replace" {
				t.Errorf("job %s: action %q", sc.JobName, rc.Action)
			}
			if (rc.Action == "" || rc.Action == "replace") && rc.TargetLabel == "" {
				t.Errorf("job %s: a replace rule without target_label", sc.JobName)
			}
		}
	}
	for _, j := range []string{"qwen-operator-workloads", "dcgm-exporter", "qwen-operator-manager"} {
		if !jobs[j] {
			t.Errorf("no scrape job %s", j)
		}
	}

	b, err = os.ReadFile(repoPath(t, "config/prometheus/podmonitor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pm := objects(t, string(b))
	if len(pm) != 1 || pm[0].GetKind() != "PodMonitor" || pm[0].GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Fatalf("podmonitor.yaml: %v", ids(pm))
	}
}
