// Package configwatch delivers the gateway's configuration as it changes: from a file (a
// ConfigMap volume, whose updates swap a symlink) or from a ConfigMap watched through the
// Kubernetes API. Both call back only when the content actually changed.
package configwatch
