package gateway

// class is a request's criticality: it orders a LeakyBucket queue (Critical first) and, with
// a DegradationPlan, decides which level the request gets.
type class uint8

// The classes, most critical first.
const (
	classCritical class = iota
	classStandard
	classSheddable
)

var classNames = [...]string{"Critical", "Standard", "Sheddable"}

func (c class) String() string { return classNames[c] }
