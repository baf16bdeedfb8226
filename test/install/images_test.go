package install

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/qwenops/qwen-operator/internal/buildinfo"
	"github.com/qwenops/qwen-operator/internal/imagebuild"
)

// TestImageNamesAgree checks that every place naming the published images names the same
// ones: internal/buildinfo (the manager's default gateway image and `make images`), the
// chart's appVersion and values, the kustomize manager, the Dockerfile's targets and the
// release workflow.
func TestImageNamesAgree(t *testing.T) {
	var chart struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	unmarshalFile(t, "charts/qwen-operator/Chart.yaml", &chart)
	if chart.AppVersion != buildinfo.Version || chart.Version != buildinfo.Version {
		t.Errorf("Chart.yaml version %s appVersion %s, internal/buildinfo.Version %s: the release tags images with the chart's version", chart.Version, chart.AppVersion, buildinfo.Version)
	}
	var values struct {
		Image        struct{ Repository string } `json:"image"`
		GatewayImage struct{ Repository string } `json:"gatewayImage"`
	}
	unmarshalFile(t, "charts/qwen-operator/values.yaml", &values)
	if values.Image.Repository != buildinfo.ManagerRepository || values.GatewayImage.Repository != buildinfo.GatewayRepository {
		t.Errorf("chart values name %s and %s, want %s and %s", values.Image.Repository, values.GatewayImage.Repository, buildinfo.ManagerRepository, buildinfo.GatewayRepository)
	}
	manager := readFile(t, "config/manager/manager.yaml")
	for _, want := range []string{"image: " + buildinfo.ManagerImage(), "--gateway-image=" + buildinfo.GatewayImage(), "command: [/manager]"} {
		if !strings.Contains(manager, want) {
			t.Errorf("config/manager/manager.yaml lacks %q", want)
		}
	}
	workflow := readFile(t, ".github/workflows/release.yaml")
	for _, want := range []string{"image: " + buildinfo.ManagerRepository, "image: " + buildinfo.GatewayRepository, "platforms: linux/amd64,linux/arm64"} {
		if !strings.Contains(workflow, want) {
			t.Errorf("the release workflow lacks %q", want)
		}
	}

	// The Dockerfile's targets run what `make images` runs, as the same user.
	docker := readFile(t, "Dockerfile")
	specs := map[string]string{}
	for _, s := range mustSpecs(t) {
		specs[s.Name] = s.Entrypoint
	}
	for target, image := range map[string]string{"manager": buildinfo.ManagerImage(), "gateway": buildinfo.GatewayImage()} {
		stage := regexp.MustCompile(`(?s)FROM \S+ AS ` + target + `\n(.*?)(\nFROM |\z)`).FindStringSubmatch(docker)
		if stage == nil {
			t.Errorf("Dockerfile has no target %s", target)
			continue
		}
		entry := specs[image]
		if entry == "" {
			t.Errorf("make images builds no %s", image)
		}
		for _, want := range []string{`ENTRYPOINT ["` + entry + `"]`, "USER 65532:65532", "COPY --from=build /out/" + target + " " + entry} {
			if !strings.Contains(stage[1], want) {
				t.Errorf("Dockerfile target %s lacks %q", target, want)
			}
		}
	}
}

func mustSpecs(t *testing.T) []imagebuild.Spec {
	t.Helper()
	specs, err := imagebuild.Specs(repoPath(t, "bin"), "")
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func unmarshalFile(t *testing.T, rel string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(readFile(t, rel)), v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}
