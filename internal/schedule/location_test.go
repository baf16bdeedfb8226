package schedule

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadLocation(t *testing.T) {
	for name, want := range map[string]string{"": "UTC", "UTC": "UTC", "Asia/Shanghai": "Asia/Shanghai", "America/New_York": "America/New_York"} {
		loc, err := LoadLocation(name)
		if err != nil || loc.String() != want {
			t.Errorf("LoadLocation(%q) = %v, %v; want %s", name, loc, err, want)
		}
	}
	for _, name := range []string{"Mars/Olympus_Mons", "Local", "Asia/Shang_hai"} {
		_, err := LoadLocation(name)
		if !errors.Is(err, ErrUnknownTimezone) || !strings.Contains(err.Error(), name) {
			t.Errorf("LoadLocation(%q) err = %v, want ErrUnknownTimezone naming the zone", name, err)
		}
	}
}
