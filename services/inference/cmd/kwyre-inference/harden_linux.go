package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// harden makes the process undumpable (no core file, no ptrace or
// /proc/PID/mem by same-uid peers), sets the core limit to 0 and locks its
// memory when the memlock limit allows. It returns what mlockall achieved.
func harden() (string, error) {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return "", fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return "", fmt.Errorf("setrlimit(RLIMIT_CORE, 0): %w", err)
	}
	// MCL_ONFAULT locks pages as they are touched, so the model's mapping
	// and the runtime's reservations are not all faulted in at once.
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
		return fmt.Sprintf("mlockall not permitted (%v): pages may be swapped where swap exists", err), nil
	}
	return "mlockall: memory locked", nil
}
