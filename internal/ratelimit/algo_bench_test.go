package ratelimit

import (
	"testing"
	"time"
)

// BenchmarkStateAllow is the algorithm alone (no key lookup, no lock): one decision for 1
// unit, 1 µs after the previous one, on a limit that always admits. Its instruction count
// under callgrind (GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind on the test binary,
// -test.benchtime=1000000x) is a measure of the algorithm that no other load disturbs.
func BenchmarkStateAllow(b *testing.B) {
	for _, alg := range allAlgorithms {
		b.Run(string(alg), func(b *testing.B) {
			p, err := Rule{Algorithm: alg, Limit: 1e9, Window: time.Second}.params()
			if err != nil {
				b.Fatal(err)
			}
			var s state
			now := t0.UnixMicro()
			for i := 0; b.Loop(); i++ {
				if o := s.allow(&p, 1, now+int64(i), 0); !o.ok {
					b.Fatal("rejected")
				}
			}
		})
	}
}
