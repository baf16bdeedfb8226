package promtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ServerName is the name (besides 127.0.0.1 and localhost) a secure Prometheus' certificate
// is valid for.
const ServerName = "prometheus.promtest.svc"

// Security is what a secure Prometheus asks of its clients.
type Security struct {
	// CA is the PEM certificate of the CA that signed Prometheus' certificate.
	CA []byte
	// Username and Password are the basic-auth credentials it accepts (and no others).
	Username, Password string
}

// Security returns what the Prometheus asks of clients, nil when it is plain HTTP.
func (p *Prometheus) Security() *Security { return p.sec }

// secure writes a CA, a server certificate for host, 127.0.0.1, localhost and ServerName, and
// a --web.config.file that serves TLS with it and requires basic auth; the Prometheus' own
// client (readiness, WaitFor*) uses both.
func (p *Prometheus) secure(dir, host string) {
	tb := p.tb
	ca := newCA(tb)
	certPEM, keyPEM, _ := ca.issue(tb, net.ParseIP(host))
	p.sec = &Security{CA: ca.pem, Username: "promtest", Password: randomString(tb)}
	hash, err := bcrypt.GenerateFromPassword([]byte(p.sec.Password), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	writeFile(tb, certFile, certPEM)
	writeFile(tb, keyFile, keyPEM)
	p.web = filepath.Join(dir, "web.yml")
	writeFile(tb, p.web, fmt.Appendf(nil, "tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  %s: %q\n",
		certFile, keyFile, p.sec.Username, hash))
	p.hc = p.sec.Client()
}

// Client returns an HTTP client that trusts the CA and sends the basic-auth credentials.
func (s *Security) Client() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CA)
	return &http.Client{Transport: &basicAuth{user: s.Username, password: s.Password,
		next: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
}

type basicAuth struct {
	user, password string
	next           http.RoundTripper
}

func (b *basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(r)
}

// BearerProxy starts an HTTPS reverse proxy in front of p, as kube-rbac-proxy or oauth-proxy
// stand in front of Thanos Querier and OpenShift monitoring: it answers 401 unless a request
// carries "Authorization: Bearer <token>", and forwards the others to p (with p's basic-auth
// credentials when p is secure). It returns the proxy's URL and its CA (PEM); it stops when
// the test ends.
func BearerProxy(tb testing.TB, p *Prometheus, token string) (url string, caPEM []byte) {
	tb.Helper()
	target, err := neturl.Parse(p.URL())
	if err != nil {
		tb.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = p.hc.Transport
	if proxy.Transport == nil {
		proxy.Transport = http.DefaultTransport
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		r.Header.Del("Authorization")
		proxy.ServeHTTP(w, r)
	}))
	ca := newCA(tb)
	_, _, cert := ca.issue(tb)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	return srv.URL, ca.pem
}

// ca is a throwaway certificate authority.
type ca struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pem  []byte
}

func newCA(tb testing.TB) ca {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "promtest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return ca{key: key, cert: cert, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a server certificate for ServerName, localhost, 127.0.0.1 and the extra IPs.
func (c ca) issue(tb testing.TB, ips ...net.IP) (certPEM, keyPEM []byte, cert tls.Certificate) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: ServerName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{ServerName, "localhost"}, IPAddresses: append([]net.IP{net.ParseIP("127.0.0.1")}, ips...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		tb.Fatal(err)
	}
	return certPEM, keyPEM, cert
}

// NewCA returns the PEM certificate of a fresh CA that signed nothing the tests serve.
func NewCA(tb testing.TB) []byte { return newCA(tb).pem }

func randomString(tb testing.TB) string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeFile(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}
