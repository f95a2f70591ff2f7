package scrub

import (
	"fmt"
	"os"
	"syscall"
)

// EnsureFreedClobbered re-executes the program with GODEBUG=clobberfree=1
// added when it did not start with it: the setting only takes effect at
// process start. The process keeps its pid and everything init set on it.
// It returns nil, without an exec, when the setting is already on, and the
// reason when the exec failed (the program then runs without it).
func EnsureFreedClobbered() error {
	if FreedClobbered() {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable for GODEBUG=%s: %w", clobberFree, err)
	}
	err = syscall.Exec(exe, os.Args, withClobberFree(os.Environ()))
	return fmt.Errorf("exec %s with GODEBUG=%s: %w", exe, clobberFree, err)
}
