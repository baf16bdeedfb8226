package gatewayconfig

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// Load parses YAML (or JSON), rejecting unknown fields, then defaults and validates it.
func Load(data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("parse gateway config: %w", err)
	}
	c.Default()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid gateway config: %w", err)
	}
	return &c, nil
}

// Marshal renders the Config as YAML, the form stored in the ConfigMap.
func Marshal(c *Config) ([]byte, error) {
	return yaml.Marshal(c)
}
