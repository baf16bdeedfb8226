package v1alpha1

// PrometheusConnection says how to reach a Prometheus-compatible query API (Prometheus, Thanos
// Querier, OpenShift monitoring, a managed Prometheus): its URL and the credentials it asks
// for. The Secrets and ConfigMaps it names are read from the namespace of the object that
// names them, each time telemetry is read, so a rotated credential takes effect without a
// restart. The shapes follow the Prometheus Operator's (authorization, basicAuth, tlsConfig).
type PrometheusConnection struct {
	// url of the Prometheus HTTP API, e.g. https://thanos-querier.openshift-monitoring.svc:9091;
	// default from the operator's --prometheus-url flag.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/$.?#][^\s]*$`
	// +optional
	URL string `json:"url,omitempty"`
	// authorization sends `Authorization: <type> <credentials>` with every query, e.g. a
	// ServiceAccount token (a kubernetes.io/service-account-token Secret's `token` key) for
	// Thanos Querier or OpenShift monitoring.
	// +optional
	Authorization *PrometheusAuthorization `json:"authorization,omitempty"`
	// basicAuth sends a username and password with every query.
	// +optional
	BasicAuth *PrometheusBasicAuth `json:"basicAuth,omitempty"`
	// tlsConfig verifies an https url against a CA of your own.
	// +optional
	TLSConfig *PrometheusTLSConfig `json:"tlsConfig,omitempty"`
}

// PrometheusAuthorization is an Authorization header credential.
type PrometheusAuthorization struct {
	// type of the credential, the header's scheme.
	// +kubebuilder:default=Bearer
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9._~+/-]*$`
	// +kubebuilder:validation:MaxLength=32
	// +optional
	Type string `json:"type,omitempty"`
	// credentials selects the Secret key that holds the credential (default key: token).
	// +required
	Credentials SecretKeyRef `json:"credentials"`
}

// PrometheusBasicAuth selects a username and a password.
type PrometheusBasicAuth struct {
	// username selects the Secret key holding the username.
	// +required
	Username KeySelector `json:"username"`
	// password selects the Secret key holding the password.
	// +required
	Password KeySelector `json:"password"`
}

// PrometheusTLSConfig verifies the server's certificate.
// +kubebuilder:validation:XValidation:rule="!(has(self.insecureSkipVerify) && self.insecureSkipVerify && has(self.ca))",message="tlsConfig: set ca or insecureSkipVerify, not both"
type PrometheusTLSConfig struct {
	// ca is the PEM bundle the server's certificate must chain to, instead of the system roots,
	// e.g. the ConfigMap openshift-service-ca.crt (key service-ca.crt) every OpenShift namespace has.
	// +optional
	CA *CASource `json:"ca,omitempty"`
	// serverName is the name to verify the certificate for, when it differs from the url's host.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ServerName string `json:"serverName,omitempty"`
	// insecureSkipVerify accepts any certificate. For tests only.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// CASource selects a PEM bundle in a Secret or a ConfigMap.
// +kubebuilder:validation:XValidation:rule="has(self.secret) != has(self.configMap)",message="ca needs exactly one of secret or configMap"
type CASource struct {
	// secret selects a Secret key holding the PEM bundle.
	// +optional
	Secret *KeySelector `json:"secret,omitempty"`
	// configMap selects a ConfigMap key holding the PEM bundle.
	// +optional
	ConfigMap *KeySelector `json:"configMap,omitempty"`
}

// KeySelector selects one key of a Secret or ConfigMap in the same namespace; unlike
// SecretKeyRef, the key has no default.
type KeySelector struct {
	// name of the Secret or ConfigMap in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// key inside its data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +required
	Key string `json:"key"`
}
