// Package scrub erases conversation plaintext: it overwrites byte buffers and
// runs plaintext handling under runtime/secret where the toolchain has it.
package scrub

import "runtime"

// Bytes overwrites the whole capacity of b with zeros, not only its length,
// so bytes an append left behind the length are erased too.
func Bytes(b []byte) {
	if cap(b) == 0 {
		return
	}
	full := b[:cap(b)]
	clear(full)
	// Keep the store from being treated as dead.
	runtime.KeepAlive(full)
}

// Int32s overwrites the whole capacity of a token buffer: token ids encode
// the text they came from.
func Int32s(t []int32) {
	if cap(t) == 0 {
		return
	}
	full := t[:cap(t)]
	clear(full)
	runtime.KeepAlive(full)
}
