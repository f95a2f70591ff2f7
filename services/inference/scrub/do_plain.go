//go:build !goexperiment.runtimesecret

package scrub

// Protected reports whether Do erases stacks, registers and heap allocations.
// Without GOEXPERIMENT=runtimesecret it does not: build with `make env`.
const Protected = false

// Do runs f. Without GOEXPERIMENT=runtimesecret only the explicit wiping of
// buffers protects plaintext.
func Do(f func()) { f() }
