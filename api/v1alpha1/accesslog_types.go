package v1alpha1

// AccessLogMode says which requests the gateway's access log writes.
// +kubebuilder:validation:Enum=Off;All;Errors
type AccessLogMode string

// Access log modes.
const (
	// AccessLogOff writes no access log.
	AccessLogOff AccessLogMode = "Off"
	// AccessLogAll writes every request.
	AccessLogAll AccessLogMode = "All"
	// AccessLogErrors writes the requests answered with a status of 400 or more.
	AccessLogErrors AccessLogMode = "Errors"
)

// GatewayAccessLog configures the gateway's access log (docs/gateway.md): one JSON line per
// request with its key id (never the key), model, level, status, upstream, tokens, latency,
// time to first token and limit decision.
type GatewayAccessLog struct {
	// mode: Off, All, or Errors (status >= 400).
	// +kubebuilder:default=All
	// +optional
	Mode AccessLogMode `json:"mode,omitempty"`
	// sample writes one in sample of the requests mode selects; default 1 (every one).
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	Sample *int32 `json:"sample,omitempty"`
}
