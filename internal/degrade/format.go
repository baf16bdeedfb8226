package degrade

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// FormatValue renders a measured value for reasons and status.signals: at least one and at
// most three decimals ("86.0", "0.953", "5.123"), three significant digits below 1
// ("0.000412"), and "+Inf", "-Inf" or "NaN".
func FormatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	var s string
	if math.Abs(v) >= 1 || v == 0 {
		s = strconv.FormatFloat(v, 'f', 3, 64)
	} else {
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	if strings.ContainsAny(s, "e") {
		return s
	}
	if !strings.Contains(s, ".") {
		return s + ".0"
	}
	s = strings.TrimRight(s, "0")
	if strings.HasSuffix(s, ".") {
		s += "0"
	}
	return s
}

// formatDuration writes 1m instead of 1m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
