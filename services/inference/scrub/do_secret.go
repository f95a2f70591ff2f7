//go:build goexperiment.runtimesecret

package scrub

import "runtime/secret"

// Protected reports whether Do erases stacks, registers and heap allocations.
const Protected = true

// Do runs f under runtime/secret.Do: the stack and registers f used are
// erased when it returns, and heap objects it allocated are erased once the
// garbage collector finds them unreachable.
func Do(f func()) { secret.Do(f) }
