// Package steps runs init's boot steps in order, printing one status line
// with its duration for each:
//
//	kwyre-init: [ok] mount filesystems (3ms)
//	kwyre-init: [ok] harden kernel (1ms): missing: kernel.unprivileged_bpf_disabled
//	kwyre-init: [FAIL] verify manifest (812ms): 2 difference(s)
package steps

import (
	"fmt"
	"io"
	"runtime/debug"
	"time"
)

// Step is one boot step. Run returns an optional note for the status line.
type Step struct {
	Name string
	Run  func() (note string, err error)
}

// Error is the failure of one step.
type Error struct {
	Step string
	Err  error
}

func (e *Error) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Run runs steps in order and stops at the first that fails (or panics),
// returning an *Error naming it.
func Run(w io.Writer, steps []Step) error {
	for _, s := range steps {
		start := time.Now()
		note, err := runOne(s)
		d := time.Since(start)
		if err != nil {
			fmt.Fprintf(w, "kwyre-init: [FAIL] %s (%s): %v\n", s.Name, round(d), err)
			return &Error{Step: s.Name, Err: err}
		}
		if note != "" {
			fmt.Fprintf(w, "kwyre-init: [ok] %s (%s): %s\n", s.Name, round(d), note)
		} else {
			fmt.Fprintf(w, "kwyre-init: [ok] %s (%s)\n", s.Name, round(d))
		}
	}
	return nil
}

func runOne(s Step) (note string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return s.Run()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
