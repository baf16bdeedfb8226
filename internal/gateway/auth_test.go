package gateway

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func writeKey(t testing.TB, dir, id, key string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, id), []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKeyStore(t *testing.T) {
	dir := t.TempDir()
	writeKey(t, dir, "alice", "sk-alice")
	writeKey(t, dir, "bob", "sk-bob")
	writeKey(t, dir, ".hidden", "sk-hidden")
	writeKey(t, dir, "empty", "  ")
	os.Mkdir(filepath.Join(dir, "..data"), 0o700)
	ks, err := loadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ header, id, code string }{
		{"Bearer sk-alice", "alice", ""},
		{"Bearer sk-bob ", "bob", ""},
		{"Bearer sk-hidden", "", "invalid_api_key"},
		{"Bearer sk-nope", "", "invalid_api_key"},
		{"Bearer ", "", "missing_api_key"},
		{"sk-alice", "", "missing_api_key"},
		{"", "", "missing_api_key"},
	}
	for _, tt := range tests {
		id, aerr := ks.authenticate(tt.header)
		code := ""
		if aerr != nil {
			code = aerr.code
			if aerr.status != 401 {
				t.Errorf("%q: status %d", tt.header, aerr.status)
			}
		}
		if id != tt.id || code != tt.code {
			t.Errorf("%q: got %q %q, want %q %q", tt.header, id, code, tt.id, tt.code)
		}
	}
	if _, err := loadKeys(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing keys dir accepted")
	}
}

func TestClientIP(t *testing.T) {
	cidrs := []netipPrefix{mustPrefix("10.0.0.0/8"), mustPrefix("127.0.0.1")}
	byCIDR, byHops, both := trust{proxies: cidrs}, trust{hops: 1}, trust{proxies: cidrs, hops: 1}
	tests := []struct {
		trust             trust
		remote, xff, want string
	}{
		{trust{}, "10.1.2.3:1234", "203.0.113.1", "10.1.2.3"},                 // no trust: the peer
		{byCIDR, "198.51.100.7:1234", "203.0.113.1", "198.51.100.7"},          // untrusted peer: XFF ignored
		{byCIDR, "10.1.2.3:1234", "203.0.113.1", "203.0.113.1"},               //
		{byCIDR, "10.1.2.3:1234", "203.0.113.1, 10.9.9.9", "203.0.113.1"},     // skip trusted hops
		{byCIDR, "10.1.2.3:1234", "198.51.100.1, 203.0.113.1", "203.0.113.1"}, //
		{byCIDR, "10.1.2.3:1234", "garbage, 203.0.113.1", "203.0.113.1"},      //
		{byCIDR, "10.1.2.3:1234", "203.0.113.1, garbage", "10.1.2.3"},         //
		{byCIDR, "10.1.2.3:1234", "10.2.2.2", "10.2.2.2"},                     // all trusted: the left-most
		{byCIDR, "10.1.2.3:1234", "", "10.1.2.3"},                             //
		{byCIDR, "[::ffff:10.1.2.3]:1", "2001:db8::1", "2001:db8::1"},         //
		// Hops count from the right, whoever the peer is (ingress-nginx sets one entry).
		{byHops, "10.244.0.7:1234", "203.0.113.1", "203.0.113.1"},
		{byHops, "10.244.0.7:1234", "198.51.100.9, 203.0.113.1", "203.0.113.1"}, // a client's forged entry is left of ours
		{trust{hops: 2}, "10.244.0.7:1234", "198.51.100.9, 203.0.113.1, 10.0.0.5", "203.0.113.1"},
		{trust{hops: 2}, "10.244.0.7:1234", "198.51.100.9", "10.244.0.7"}, // too few entries: not through the proxies
		{byHops, "10.244.0.7:1234", "", "10.244.0.7"},
		{byHops, "10.244.0.7:1234", "203.0.113.1, nonsense", "10.244.0.7"},
		{byHops, "10.244.0.7:1234", "203.0.113.1 , [2001:db8::5]:443", "2001:db8::5"},
		// Both: the hop count applies only to connections from the listed proxies.
		{both, "10.244.0.7:1234", "198.51.100.9, 203.0.113.1", "203.0.113.1"},
		{both, "192.0.2.50:1234", "198.51.100.9, 203.0.113.1", "192.0.2.50"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := clientIP(r, tt.trust).String(); got != tt.want {
			t.Errorf("trust %+v remote %s xff %q: got %s, want %s", tt.trust, tt.remote, tt.xff, got, tt.want)
		}
	}
	// Several X-Forwarded-For fields form one list, the last field right-most.
	r := httptest.NewRequest("POST", "/", nil)
	r.RemoteAddr = "10.244.0.7:1"
	r.Header.Add("X-Forwarded-For", "198.51.100.9, 203.0.113.1")
	r.Header.Add("X-Forwarded-For", "192.0.2.1")
	for hops, want := range map[int]string{1: "192.0.2.1", 2: "203.0.113.1", 3: "198.51.100.9", 4: "10.244.0.7"} {
		if got := clientIP(r, trust{hops: hops}).String(); got != want {
			t.Errorf("two fields, hops %d: %s, want %s", hops, got, want)
		}
	}
}
