package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunIsBoundedByCount checks that a run stops at MaxRequests, counts failures apart and
// reads every body.
func TestRunIsBoundedByCount(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1)%10 == 0 {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "data: x\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	r := Run(t.Context(), Options{URL: srv.URL, Body: []byte(`{}`), Concurrency: 4, Duration: time.Minute, MaxRequests: 200})
	if r.OK+r.Failed != 200 || served.Load() != 200 || r.Failed != 20 {
		t.Fatalf("%+v, served %d", r, served.Load())
	}
	if r.P50 <= 0 || r.P99 < r.P50 {
		t.Errorf("percentiles %v %v", r.P50, r.P99)
	}
}
