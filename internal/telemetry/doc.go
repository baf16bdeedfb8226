// Package telemetry reads the signals of API.md from Prometheus: each signal is a PromQL
// preset (presets.go, all in one table) scoped to one QwenService's pods, or the user's own
// query with $namespace, $service, $pods and $gatewayPods substituted. Query failures are
// typed (ErrNoData, ErrBadQuery, ErrUnavailable) and Reason maps them to condition reasons.
package telemetry
