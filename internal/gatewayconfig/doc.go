// Package gatewayconfig is the configuration of the gateway data plane (cmd/gateway).
//
// The operator renders a Config into the key "config.yaml" of the gateway's ConfigMap; the
// gateway loads it with Load, which rejects unknown fields, applies defaults and validates.
// A config that fails Load is never served: the gateway keeps the last good one.
package gatewayconfig
