package schedule

import (
	"fmt"
	"testing"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

func limitsEqual(a, b v1alpha1.LimitSet) bool { return fmtLimits(a) == fmtLimits(b) }

func fmtLimits(l v1alpha1.LimitSet) string {
	return fmt.Sprintf("{rpm:%v burst:%v tpm:%v in:%v out:%v conc:%v rph:%v rpd:%v tph:%v tpd:%v}",
		ptrString(l.RequestsPerMinute), ptrString(l.Burst), ptrString(l.TokensPerMinute),
		ptrString(l.InputTokensPerMinute), ptrString(l.OutputTokensPerMinute), ptrString(l.MaxConcurrentRequests),
		ptrString(l.RequestsPerHour), ptrString(l.RequestsPerDay), ptrString(l.TokensPerHour), ptrString(l.TokensPerDay))
}

func TestMerge(t *testing.T) {
	base := v1alpha1.LimitSet{RequestsPerMinute: i32(30), Burst: i32(10), TokensPerMinute: i64(60000), MaxConcurrentRequests: i32(8)}
	for _, tc := range []struct {
		name       string
		base, over v1alpha1.LimitSet
		want       v1alpha1.LimitSet
	}{
		{"empty overlay copies base", base, v1alpha1.LimitSet{}, base},
		{"schedule sets rpm only", base, v1alpha1.LimitSet{RequestsPerMinute: i32(50)},
			v1alpha1.LimitSet{RequestsPerMinute: i32(50), Burst: i32(10), TokensPerMinute: i64(60000), MaxConcurrentRequests: i32(8)}},
		{"premium tier adds dimensions", base, v1alpha1.LimitSet{RequestsPerMinute: i32(600), OutputTokensPerMinute: i64(9000)},
			v1alpha1.LimitSet{RequestsPerMinute: i32(600), Burst: i32(10), TokensPerMinute: i64(60000), OutputTokensPerMinute: i64(9000), MaxConcurrentRequests: i32(8)}},
		{"overlay onto empty base", v1alpha1.LimitSet{}, v1alpha1.LimitSet{InputTokensPerMinute: i64(5)}, v1alpha1.LimitSet{InputTokensPerMinute: i64(5)}},
		{"budgets merge like the rest", v1alpha1.LimitSet{TokensPerDay: i64(1000), RequestsPerHour: i32(5)}, v1alpha1.LimitSet{TokensPerDay: i64(9000), TokensPerHour: i64(100), RequestsPerDay: i32(50)},
			v1alpha1.LimitSet{TokensPerDay: i64(9000), TokensPerHour: i64(100), RequestsPerHour: i32(5), RequestsPerDay: i32(50)}},
	} {
		if got := Merge(tc.base, tc.over); !limitsEqual(got, tc.want) {
			t.Errorf("%s: got %s, want %s", tc.name, fmtLimits(got), fmtLimits(tc.want))
		}
	}

	over := v1alpha1.LimitSet{Burst: i32(40)}
	got := Merge(base, over)
	*got.RequestsPerMinute, *got.Burst = 1, 1
	if *base.RequestsPerMinute != 30 || *over.Burst != 40 {
		t.Errorf("Merge result aliases its arguments")
	}
}

// Overrides (tiers) merge onto the limits in force, which are the schedule's over the base.
func TestOverrideOntoScheduledLimits(t *testing.T) {
	scheds, base := sampleSchedules()
	res, err := Evaluate(scheds, base, mustLoad(t, "Asia/Shanghai"), instant(t, mustLoad(t, "Asia/Shanghai"), "2026-11-26 23:00"))
	if err != nil {
		t.Fatal(err)
	}
	premium := v1alpha1.LimitSet{RequestsPerMinute: i32(600), TokensPerMinute: i64(200000)}
	got := Merge(res.Limits, premium)
	want := v1alpha1.LimitSet{RequestsPerMinute: i32(600), Burst: i32(40), TokensPerMinute: i64(200000), MaxConcurrentRequests: i32(8)}
	if !limitsEqual(got, want) {
		t.Errorf("got %s, want %s", fmtLimits(got), fmtLimits(want))
	}
}

func TestScale(t *testing.T) {
	full := v1alpha1.LimitSet{RequestsPerMinute: i32(50), Burst: i32(10), TokensPerMinute: i64(60000),
		InputTokensPerMinute: i64(999), OutputTokensPerMinute: i64(1), MaxConcurrentRequests: i32(8)}
	for _, tc := range []struct {
		name   string
		in     v1alpha1.LimitSet
		factor v1alpha1.Decimal
		want   v1alpha1.LimitSet
	}{
		{"halve: rates and concurrency, not burst", full, "0.5",
			v1alpha1.LimitSet{RequestsPerMinute: i32(25), Burst: i32(10), TokensPerMinute: i64(30000),
				InputTokensPerMinute: i64(499), OutputTokensPerMinute: i64(1), MaxConcurrentRequests: i32(4)}},
		{"one is identity", full, "1", full},
		{"exact decimal: 0.29 of 100 is 29", v1alpha1.LimitSet{RequestsPerMinute: i32(100)}, "0.29", v1alpha1.LimitSet{RequestsPerMinute: i32(29)}},
		{"rounds down", v1alpha1.LimitSet{RequestsPerMinute: i32(7)}, "0.5", v1alpha1.LimitSet{RequestsPerMinute: i32(3)}},
		{"never below one", v1alpha1.LimitSet{RequestsPerMinute: i32(3), MaxConcurrentRequests: i32(1)}, "0.000001",
			v1alpha1.LimitSet{RequestsPerMinute: i32(1), MaxConcurrentRequests: i32(1)}},
		{"scaling up is capped at the schema maximum", v1alpha1.LimitSet{RequestsPerMinute: i32(600000), TokensPerMinute: i64(9000000), MaxConcurrentRequests: i32(50000)}, "10",
			v1alpha1.LimitSet{RequestsPerMinute: i32(1000000), TokensPerMinute: i64(18000000), MaxConcurrentRequests: i32(100000)}},
		{"unset stays unset", v1alpha1.LimitSet{Burst: i32(5)}, "0.5", v1alpha1.LimitSet{Burst: i32(5)}},
		{"budgets scale, capped at the schema maximum", v1alpha1.LimitSet{TokensPerDay: i64(9000000000), TokensPerHour: i64(1000), RequestsPerHour: i32(9), RequestsPerDay: i32(1000000000)}, "2",
			v1alpha1.LimitSet{TokensPerDay: i64(10000000000), TokensPerHour: i64(2000), RequestsPerHour: i32(18), RequestsPerDay: i32(1000000000)}},
	} {
		got, err := Scale(tc.in, tc.factor)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !limitsEqual(got, tc.want) {
			t.Errorf("%s: got %s, want %s", tc.name, fmtLimits(got), fmtLimits(tc.want))
		}
	}
	if *full.RequestsPerMinute != 50 {
		t.Errorf("Scale changed its argument")
	}
	for _, bad := range []v1alpha1.Decimal{"0", "0.0", "", "abc", "1.", ".5", "-1", "1.1234567", "1e3"} {
		if _, err := Scale(full, bad); err == nil {
			t.Errorf("Scale(%q) accepted", bad)
		}
	}
}
