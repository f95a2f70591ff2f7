package scrub

import (
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// clobberFree is the GODEBUG setting that makes the garbage collector
// overwrite every object it frees. Go never clears freed memory otherwise:
// a buffer that held plaintext keeps it until the allocator hands the
// memory out again, and buffers that are not ours (net/http's pooled
// connection readers, say) cannot be wiped explicitly.
const clobberFree = "clobberfree=1"

// FreedClobbered reports whether this process started with the garbage
// collector overwriting freed objects (GODEBUG=clobberfree=1). The runtime
// reads GODEBUG once, at start; so does this package.
func FreedClobbered() bool { return startedClobbered }

var startedClobbered = clobberFreeIn(os.Getenv("GODEBUG"))

// clobberFreeIn reports whether a GODEBUG value turns clobberfree on.
func clobberFreeIn(godebug string) bool {
	on := false
	for _, f := range strings.Split(godebug, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(f), "="); ok && k == "clobberfree" {
			on = v == "1" // the last setting wins, as in the runtime
		}
	}
	return on
}

// withClobberFree returns env with clobberfree=1 appended to GODEBUG.
func withClobberFree(env []string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			found = true
			if v != "" {
				v += ","
			}
			kv = "GODEBUG=" + v + clobberFree
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG="+clobberFree)
	}
	return out
}

var collections atomic.Uint64

// Collect runs two garbage collections. The first moves what sync.Pools
// hold to their victim caches, the second frees it; runtime.GC returns
// after sweeping, so with FreedClobbered every object freed on the way,
// pooled buffers included, is overwritten before Collect returns.
func Collect() {
	runtime.GC()
	runtime.GC()
	collections.Add(1)
}

// Collections counts the Collects that have finished, for tests.
func Collections() uint64 { return collections.Load() }

var (
	kick      = make(chan struct{}, 1)
	startOnce sync.Once
)

// CollectSoon runs Collect in the background, so that a wipe does not
// wait for it. Calls while one is pending fold into it; a call during a
// Collect queues one more, which finds what was freed in the meantime.
func CollectSoon() {
	startOnce.Do(func() {
		go func() {
			for range kick {
				Collect()
			}
		}()
	})
	select {
	case kick <- struct{}{}:
	default:
	}
}
