package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// identity is one certificate the cluster's components present or serve with.
type identity struct {
	file   string // <file>.crt and <file>.key under pki/
	cn     string
	orgs   []string
	usage  x509.ExtKeyUsage
	dns    []string
	ips    []net.IP
	kubecf string // when set, a kubeconfig kubeconfigs/<kubecf>.kubeconfig uses this identity
}

// identities are the x509 identities of REAL-NODE.md: admin and the API server's kubelet
// client are system:masters; each component authenticates as its well-known user, bound by
// the API server's default RBAC; the kubelet is a node (Node authorizer + NodeRestriction).
func identities() []identity {
	return []identity{
		{file: "apiserver", cn: "kube-apiserver", usage: x509.ExtKeyUsageServerAuth,
			dns: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
			ips: []net.IP{net.ParseIP(APIServiceIP), net.ParseIP(NodeIP), net.ParseIP("127.0.0.1")}},
		{file: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth},
		{file: "admin", cn: "qwen-admin", orgs: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth, kubecf: "admin"},
		{file: "controller-manager", cn: "system:kube-controller-manager", usage: x509.ExtKeyUsageClientAuth, kubecf: "controller-manager"},
		{file: "scheduler", cn: "system:kube-scheduler", usage: x509.ExtKeyUsageClientAuth, kubecf: "scheduler"},
		{file: "kube-proxy", cn: "system:kube-proxy", usage: x509.ExtKeyUsageClientAuth, kubecf: "kube-proxy"},
		{file: "kubelet-client", cn: "system:node:" + NodeName, orgs: []string{"system:nodes"}, usage: x509.ExtKeyUsageClientAuth, kubecf: "kubelet"},
		{file: "kubelet-serving", cn: "system:node:" + NodeName, orgs: []string{"system:nodes"}, usage: x509.ExtKeyUsageServerAuth,
			dns: []string{NodeName}, ips: []net.IP{net.ParseIP(NodeIP)}},
	}
}

// writePKI creates, under dir, a CA (EC P-256), every identity's certificate and key signed by
// it, and the service-account signing key pair (RSA 2048).
func writePKI(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "qwen-test-ca"},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writeCertKey(dir, "ca", caDER, caKey); err != nil {
		return err
	}
	for i, id := range identities() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)),
			Subject:      pkix.Name{CommonName: id.cn, Organization: id.orgs},
			NotBefore:    now,
			NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{id.usage},
			DNSNames:     id.dns,
			IPAddresses:  id.ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("certificate %s: %w", id.file, err)
		}
		if err := writeCertKey(dir, id.file, der, key); err != nil {
			return err
		}
	}
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(sa), 0o600); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub, 0o644)
}

func writeCertKey(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	k, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, name+".key"), "EC PRIVATE KEY", k, 0o600); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der, 0o644)
}

func writePEM(path, typ string, der []byte, perm os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), perm)
}
