// Package watchdog runs the intrusion scanners of package scan on an interval,
// confirms what repeats, and raises the alarm: the inference service's wipe
// signal, a report line to init, and the state file the /audit answer reads.
package watchdog

import (
	"github.com/kwyre/kwyre/services/watchdog/scan"
)

// Verdict confirms findings: one seen on two consecutive scans (or marked
// Immediate) is confirmed, and each confirmed finding is reported once.
type Verdict struct {
	prev     map[string]string // finding ID -> scanner, from the last scan
	reported map[string]bool
}

// NewVerdict returns a Verdict that has seen nothing.
func NewVerdict() *Verdict {
	return &Verdict{prev: map[string]string{}, reported: map[string]bool{}}
}

// Observe takes one scan's findings and the names of the scanners that failed
// in it, and returns the findings confirmed by this scan that were not
// reported before. A failed scanner neither confirms nor forgets its findings
// of the previous scan: they carry over to the next one.
func (v *Verdict) Observe(findings []scan.Finding, failed map[string]bool) []scan.Finding {
	next := make(map[string]string, len(findings))
	var confirmed []scan.Finding
	for _, f := range findings {
		id := f.ID()
		if _, dup := next[id]; dup {
			continue
		}
		next[id] = f.Scanner
		if _, before := v.prev[id]; (before || f.Immediate) && !v.reported[id] {
			v.reported[id] = true
			confirmed = append(confirmed, f)
		}
	}
	for id, scanner := range v.prev {
		if failed[scanner] {
			if _, ok := next[id]; !ok {
				next[id] = scanner
			}
		}
	}
	v.prev = next
	return confirmed
}

// Triggered reports whether any finding has been confirmed.
func (v *Verdict) Triggered() bool { return len(v.reported) > 0 }
