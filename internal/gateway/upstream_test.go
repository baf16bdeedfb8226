package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/qwenops/qwen-operator/internal/gatewayconfig"
)

// TestTransportResolve checks Options.Resolve at the transport: a mapped host:port (matched
// case-insensitively) connects to the mapped address while the request keeps its URL host in
// the Host header; other addresses are dialled as they are.
func TestTransportResolve(t *testing.T) {
	var hosts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts = append(hosts, r.Host)
		io.WriteString(w, "engine")
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	tr := newTransport(gatewayconfig.Timeouts{Connect: metav1.Duration{Duration: 2 * time.Second}}, map[string]string{"Qwen3-Engine.ai.svc:8000": addr})
	defer tr.CloseIdleConnections()
	get := func(url string) (string, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	if body, err := get("http://qwen3-engine.ai.svc:8000/v1/models"); err != nil || body != "engine" {
		t.Fatalf("mapped address: %q %v", body, err)
	}
	if len(hosts) != 1 || hosts[0] != "qwen3-engine.ai.svc:8000" {
		t.Fatalf("Host header = %v, want the URL's host", hosts)
	}
	if body, err := get(srv.URL); err != nil || body != "engine" {
		t.Fatalf("unmapped address: %q %v", body, err)
	}
}

// TestResolvingDialerPassThrough checks which addresses are replaced: only exact host:port
// keys, the port included.
func TestResolvingDialerPassThrough(t *testing.T) {
	var got []string
	dial := func(_ context.Context, _, addr string) (net.Conn, error) {
		got = append(got, addr)
		return nil, net.ErrClosed
	}
	if d := resolvingDialer(nil, dial); d == nil {
		t.Fatal("nil dialer")
	}
	d := resolvingDialer(map[string]string{"a.svc:80": "127.0.0.1:9"}, dial)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, addr := range []string{"A.SVC:80", "a.svc:81", "b.svc:80"} {
		d(ctx, "tcp", addr)
	}
	if want := "127.0.0.1:9,a.svc:81,b.svc:80"; strings.Join(got, ",") != want {
		t.Fatalf("dialled %v, want %s", got, want)
	}
}
