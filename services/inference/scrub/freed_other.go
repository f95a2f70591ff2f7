//go:build !linux

package scrub

import "errors"

// EnsureFreedClobbered is only implemented on Linux, the appliance's system.
func EnsureFreedClobbered() error {
	if FreedClobbered() {
		return nil
	}
	return errors.New("re-executing with GODEBUG=clobberfree=1 is only implemented on Linux")
}
