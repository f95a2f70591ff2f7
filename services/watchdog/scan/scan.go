// Package scan holds the watchdog's scanners: each looks at one kind of kernel
// object (processes, tracers, sockets, file descriptors, links, modules, the boot
// medium, GPU contexts) and reports what it finds as metadata-only findings.
//
// Scanners never decide: the watchdog confirms a finding only when it repeats on
// two consecutive scans (or at once when the scanner marks it Immediate).
package scan

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Finding is one suspicious object seen in one scan. It carries metadata only
// (pids, executable names, addresses, link names), never memory or content.
type Finding struct {
	Scanner string `json:"scanner"`
	// Key identifies the object across scans within one scanner (pid+exe,
	// netns+socket, link name, ...). Scanner+Key is the finding's identity.
	Key  string `json:"-"`
	What string `json:"what"`
	// Immediate findings need no second scan (pulling the boot medium).
	Immediate bool `json:"-"`
}

// ID is the finding's identity across scans.
func (f Finding) ID() string { return f.Scanner + "\x00" + f.Key }

// Scanner looks at the system once per scan.
type Scanner interface {
	Name() string
	// Scan returns what it found. A *SkipError means the scanner cannot look
	// here (no driver, say); it is reported as skipped, never as a failure.
	Scan(env *Env) ([]Finding, error)
}

// SkipError says a scanner has nothing it can look at on this machine.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// Skipped reports whether err says the scanner was skipped, and why.
func Skipped(err error) (string, bool) {
	var s *SkipError
	if errors.As(err, &s) {
		return s.Reason, true
	}
	return "", false
}

func finding(scanner, key, format string, args ...any) Finding {
	return Finding{Scanner: scanner, Key: key, What: Printable(fmt.Sprintf(format, args...))}
}

// Printable replaces control and non-printable characters with '?': a
// finding names things an intruder chose (executable paths, comm), and it is
// printed on the console.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// Waker is a scanner that can ask for a scan before the next tick (an event
// arrived that must not wait for the interval).
type Waker interface {
	Wake() <-chan struct{}
}
