//go:build goexperiment.runtimesecret

package scrub

import "runtime/secret"

// Protected reports whether Do erases stacks, registers and heap allocations.
const Protected = true

// Do runs f under runtime/secret.Do: the stack and registers f used are
// erased when it returns, and heap objects it allocated are erased once the
// garbage collector finds them unreachable.
//
// f must not call into C: with Go 1.26's runtimesecret experiment a cgo call
// inside secret.Do kills the process with SIGSEGV (measured with go1.26.8).
// Keep llama.cpp calls outside and wipe their buffers explicitly.
func Do(f func()) { secret.Do(f) }
