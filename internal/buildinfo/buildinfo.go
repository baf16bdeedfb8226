// Package buildinfo names the project's release: its version and the images the release
// workflow (.github/workflows/release.yaml) publishes. The Helm chart's appVersion, the
// Dockerfile and `make images` use the same names; test/install checks that they agree.
package buildinfo

// Version is the release version, the tag of the published images. It equals the chart's
// appVersion; a build may stamp another with
// -ldflags "-X github.com/qwenops/qwen-operator/internal/buildinfo.Version=...".
var Version = "0.1.0"

// Image repositories the release workflow pushes to.
const (
	// ManagerRepository holds the operator (cmd/manager) image.
	ManagerRepository = "ghcr.io/qwenops/qwen-operator"
	// GatewayRepository holds the gateway (cmd/gateway) image.
	GatewayRepository = "ghcr.io/qwenops/qwen-gateway"
)

// NonRootUID is the user (and group) the images run as, distroless' "nonroot".
const NonRootUID = 65532

// ManagerImage is the manager image of this version.
func ManagerImage() string { return ManagerRepository + ":" + Version }

// GatewayImage is the gateway image of this version: the default gateway of a QwenService.
func GatewayImage() string { return GatewayRepository + ":" + Version }
