package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// keyStore holds the SHA-256 of every API key by key id. Keys themselves are never kept
// in memory after loading and never logged.
type keyStore struct {
	ids    []string
	hashes [][sha256.Size]byte
}

// loadKeys reads one key per file from dir (the mounted Secret): file name = key id, content =
// key, surrounding whitespace trimmed. Dot files (the Secret volume's ..data links) are skipped.
// An empty dir name means no authentication and returns nil.
func loadKeys(dir string) (*keyStore, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read API keys: %w", err)
	}
	ks := &keyStore{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if st, err := os.Stat(path); err != nil || st.IsDir() {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read API key %s: %w", e.Name(), err)
		}
		key := strings.TrimSpace(string(b))
		if key == "" {
			continue
		}
		ks.ids = append(ks.ids, e.Name())
		ks.hashes = append(ks.hashes, sha256.Sum256([]byte(key)))
	}
	return ks, nil
}

// authenticate returns the key id of the bearer token in an Authorization header. It compares
// the token's hash with every stored hash in constant time, without stopping at a match.
func (ks *keyStore) authenticate(authorization string) (string, *apiError) {
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return "", &apiError{status: 401, typ: "invalid_request_error", code: "missing_api_key",
			message: "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'."}
	}
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range ks.hashes {
		if subtle.ConstantTimeCompare(h[:], ks.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", &apiError{status: 401, typ: "invalid_request_error", code: "invalid_api_key",
			message: "Incorrect API key provided."}
	}
	return ks.ids[found], nil
}
