package ratelimit

import (
	"context"
	"sort"
	"testing"
	"time"
)

// TestWorstSixtySeconds measures, for each algorithm at 30 per minute (burst 10 where the
// algorithm has a bucket), the most requests an attacker gets through in any 60 s span:
// it waits until 1 ms before a minute ends, then at every millisecond sends requests until
// one is rejected. docs/ratelimitpolicy.md quotes these numbers. For a LeakyBucket queue it
// counts the requests released (admitted + Wait): the queue's output.
func TestWorstSixtySeconds(t *testing.T) {
	cases := []struct {
		rule Rule
		want int
	}{
		{Rule{Algorithm: FixedWindow, Limit: 30, Window: time.Minute}, 60},
		{Rule{Algorithm: SlidingWindow, Limit: 30, Window: time.Minute}, 59},
		{Rule{Algorithm: SlidingLog, Limit: 30, Window: time.Minute}, 30},
		{Rule{Algorithm: TokenBucket, Limit: 30, Window: time.Minute, Burst: 10}, 39},
		{Rule{Algorithm: Hybrid, Limit: 30, Window: time.Minute, Burst: 10}, 39},
		{Rule{Algorithm: LeakyBucket, Limit: 30, Window: time.Minute, Burst: 10}, 39},
		{Rule{Algorithm: LeakyBucket, Limit: 30, Window: time.Minute, Burst: 10, MaxWait: 30 * time.Second}, 30},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(ruleName(c.rule), func(t *testing.T) {
			m := NewMemory(MemoryOptions{})
			var passed []time.Time
			start := t0.Add(time.Minute - time.Millisecond)
			for now := start; now.Before(start.Add(3 * time.Minute)); now = now.Add(time.Millisecond) {
				for {
					d, err := m.Allow(ctx, "attacker", c.rule, 1, now)
					if err != nil {
						t.Fatal(err)
					}
					if !d.Allowed {
						break
					}
					passed = append(passed, now.Add(d.Wait))
				}
			}
			sort.Slice(passed, func(i, j int) bool { return passed[i].Before(passed[j]) })
			most := 0
			for i, j := 0, 0; i < len(passed); i++ { // the span [passed[i], passed[i]+60s)
				for j < len(passed) && passed[j].Before(passed[i].Add(time.Minute)) {
					j++
				}
				most = max(most, j-i)
			}
			t.Logf("%s: at most %d requests in any 60 s span", ruleName(c.rule), most)
			if most != c.want {
				t.Errorf("at most %d in a 60 s span, want %d", most, c.want)
			}
		})
	}
}
