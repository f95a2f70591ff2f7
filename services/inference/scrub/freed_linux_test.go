package scrub

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/kwyre/kwyre/services/inference/scrub/scrubtest"
)

func TestMain(m *testing.M) {
	if err := EnsureFreedClobbered(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestCollectOverwritesFreed copies a canary into 1,000 small buffers and
// drops every other one. The dropped ones share their spans with live
// buffers, so the runtime neither hands their memory back to the system nor
// reuses it at once: only clobberfree erases them.
func TestCollectOverwritesFreed(t *testing.T) {
	if !FreedClobbered() {
		t.Fatal("the test runs without GODEBUG=clobberfree=1")
	}
	canary := scrubtest.Canary(t)
	keep := make([][]byte, 0, 500)
	for i := range 1000 {
		b := make([]byte, 64)
		copy(b, canary)
		if i%2 == 0 {
			keep = append(keep, b)
		}
	}
	Collect()
	if n := scrubtest.Count(t, canary); n != len(keep)+1 { // +1: the canary itself
		t.Errorf("%d copies of the canary after Collect, want %d (the buffers still referenced and the canary)", n, len(keep)+1)
	}
	runtime.KeepAlive(keep)
}
