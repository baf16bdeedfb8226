package schedule

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"

	"github.com/qwenops/qwen-operator/api/v1alpha1"
)

// Merge returns base with every field that is set in over replacing base's; the result shares
// no pointers with either argument. Schedules and override tiers are merged this way.
func Merge(base, over v1alpha1.LimitSet) v1alpha1.LimitSet {
	return v1alpha1.LimitSet{
		RequestsPerMinute:     pick(over.RequestsPerMinute, base.RequestsPerMinute),
		Burst:                 pick(over.Burst, base.Burst),
		TokensPerMinute:       pick(over.TokensPerMinute, base.TokensPerMinute),
		InputTokensPerMinute:  pick(over.InputTokensPerMinute, base.InputTokensPerMinute),
		OutputTokensPerMinute: pick(over.OutputTokensPerMinute, base.OutputTokensPerMinute),
		MaxConcurrentRequests: pick(over.MaxConcurrentRequests, base.MaxConcurrentRequests),
		RequestsPerHour:       pick(over.RequestsPerHour, base.RequestsPerHour),
		RequestsPerDay:        pick(over.RequestsPerDay, base.RequestsPerDay),
		TokensPerHour:         pick(over.TokensPerHour, base.TokensPerHour),
		TokensPerDay:          pick(over.TokensPerDay, base.TokensPerDay),
	}
}

func pick[T any](over, base *T) *T {
	switch {
	case over != nil:
		v := *over
		return &v
	case base != nil:
		v := *base
		return &v
	}
	return nil
}

// The schema's maxima, so a scaled-up set still passes status validation.
const (
	maxRequests    = 1_000_000
	maxTokens      = 18_000_000
	maxConcurrency = 100_000
	maxBudgetReqs  = 1_000_000_000
	maxHourTokens  = 100_000_000_000
	maxDayTokens   = 10_000_000_000
)

// Scale multiplies the limits by an adaptive rule's factor ("0.5" halves them): the per-minute
// rates (requests, tokens, input and output tokens), the hourly and daily budgets and
// maxConcurrentRequests. Each result is
// rounded down, never below 1 and never above the schema's maximum for the field. Burst is a
// bucket capacity, not a rate, and is kept: the API's example status shows requestsPerMinute
// halved from 50 to 25 with burst still 10. Unset fields stay unset. The arithmetic is exact
// decimal, so "0.29" of 100 is 29. A factor that is not a positive decimal is an error.
func Scale(limits v1alpha1.LimitSet, factor v1alpha1.Decimal) (v1alpha1.LimitSet, error) {
	micros, err := parseMicros(factor)
	if err != nil {
		return v1alpha1.LimitSet{}, err
	}
	if micros == 0 {
		return v1alpha1.LimitSet{}, fmt.Errorf("scale %q: must be greater than 0", factor)
	}
	out := Merge(limits, v1alpha1.LimitSet{})
	scale32 := func(p *int32, ceiling uint64) {
		if p != nil {
			*p = int32(scaleInt(uint64(*p), micros, ceiling))
		}
	}
	scale64 := func(p *int64, ceiling uint64) {
		if p != nil {
			*p = int64(scaleInt(uint64(*p), micros, ceiling))
		}
	}
	scale32(out.RequestsPerMinute, maxRequests)
	scale64(out.TokensPerMinute, maxTokens)
	scale64(out.InputTokensPerMinute, maxTokens)
	scale64(out.OutputTokensPerMinute, maxTokens)
	scale32(out.MaxConcurrentRequests, maxConcurrency)
	scale32(out.RequestsPerHour, maxBudgetReqs)
	scale32(out.RequestsPerDay, maxBudgetReqs)
	scale64(out.TokensPerHour, maxHourTokens)
	scale64(out.TokensPerDay, maxDayTokens)
	return out, nil
}

// scaleInt returns floor(v * micros / 1e6) clamped to [1, ceiling].
func scaleInt(v, micros, ceiling uint64) uint64 {
	hi, lo := bits.Mul64(v, micros)
	if hi >= 1e6 { // the quotient would not fit in 64 bits
		return ceiling
	}
	q, _ := bits.Div64(hi, lo, 1e6)
	return min(max(q, 1), ceiling)
}

// parseMicros reads a Decimal ("0.5", "83", "1.25") as an exact count of millionths.
func parseMicros(d v1alpha1.Decimal) (uint64, error) {
	s := string(d)
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" || len(ip) > 9 || len(fp) > 6 || (strings.Contains(s, ".") && fp == "") {
		return 0, fmt.Errorf("scale %q: %w", d, errNotDecimal)
	}
	var micros uint64
	for _, c := range ip + fp + strings.Repeat("0", 6-len(fp)) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("scale %q: %w", d, errNotDecimal)
		}
		micros = micros*10 + uint64(c-'0')
	}
	return micros, nil
}

var errNotDecimal = errors.New("not a decimal such as 0.5 (up to 9 digits, then up to 6 after the point)")
