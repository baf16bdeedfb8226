package schedule

import (
	"errors"
	"fmt"
	"time"

	// The operator image may have no zoneinfo files; embed the IANA database (~450 kB).
	_ "time/tzdata"
)

// ErrUnknownTimezone is wrapped by LoadLocation when the name is not an IANA zone.
var ErrUnknownTimezone = errors.New("unknown timezone")

// LoadLocation returns the IANA zone of a policy's timezone field; "" means UTC. "Local" is
// refused because it would depend on the operator's host.
func LoadLocation(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, fmt.Errorf("%w %q: name an IANA zone such as Asia/Shanghai or UTC; Local would depend on the operator's host", ErrUnknownTimezone, name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%w %q: not in the IANA time zone database (examples: Asia/Shanghai, America/New_York, UTC)", ErrUnknownTimezone, name)
	}
	return loc, nil
}
