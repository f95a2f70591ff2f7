// Package shutdown is how init ends: what triggers it (signals,
// Ctrl-Alt-Del, the power button, a confirmed intrusion, a failed service)
// and the one sequence every trigger runs: stop the services (TERM, wait,
// KILL — the inference service wipes every session on TERM), wipe init's
// own buffers, sync, drop caches, power off.
package shutdown

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Sequence is the shutdown to run; each field may be nil.
type Sequence struct {
	Out        io.Writer
	Stop       func(grace time.Duration) (killed []string) // the supervisor's Stop
	Grace      time.Duration                               // TERM to KILL; 0 = 5 s
	Wipe       func()                                      // init's own buffers (the output ring)
	DropCaches string                                      // "/proc/sys/vm/drop_caches"; "" = skip
	PowerOff   func() error                                // nil = reboot(POWER_OFF)
}

// Run prints the reason and runs the sequence. It returns only if powering
// off failed; the caller then halts.
func (s Sequence) Run(why string) error {
	out := s.Out
	if out == nil {
		out = io.Discard
	}
	start := time.Now()
	fmt.Fprintf(out, "kwyre-init: shutting down: %s\n", why)
	if s.Stop != nil {
		grace := s.Grace
		if grace == 0 {
			grace = 5 * time.Second
		}
		if killed := s.Stop(grace); len(killed) > 0 {
			fmt.Fprintf(out, "kwyre-init: killed after %s: %v\n", grace, killed)
		}
	}
	if s.Wipe != nil {
		s.Wipe()
	}
	unix.Sync()
	if s.DropCaches != "" {
		if err := os.WriteFile(s.DropCaches, []byte("3\n"), 0); err != nil {
			fmt.Fprintf(out, "kwyre-init: drop caches: %v\n", err)
		}
	}
	fmt.Fprintf(out, "kwyre-init: services stopped in %s; powering off\n", time.Since(start).Round(time.Millisecond))
	off := s.PowerOff
	if off == nil {
		off = PowerOff
	}
	if err := off(); err != nil {
		fmt.Fprintf(out, "kwyre-init: power off: %v\n", err)
		return err
	}
	return nil
}

// PowerOff asks the kernel to power the machine off now.
func PowerOff() error {
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// DisableCtrlAltDel makes the kernel send SIGINT to init on Ctrl-Alt-Del
// instead of rebooting at once, so that the shutdown sequence runs.
func DisableCtrlAltDel() error {
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		return fmt.Errorf("Ctrl-Alt-Del to SIGINT: %w", err)
	}
	return nil
}

// Halt never returns: it keeps the machine up with the last message on the
// screen, as a failed boot must (power it off by hand, or with the button).
func Halt() {
	for {
		time.Sleep(time.Hour)
	}
}
