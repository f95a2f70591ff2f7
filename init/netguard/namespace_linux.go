package netguard

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NewNamespace creates a network namespace holding only lo (up, 127.0.0.1/8
// and ::1), without moving the caller into it, and returns an fd that keeps
// it alive: children started with setns to it see no other link.
//
// The unshare runs on a locked OS thread that is discarded afterwards (its
// goroutine ends while locked). Programs should lock their main goroutine
// to the main thread, as kwyre-init does, so this thread is never the
// thread-group leader, which Go cannot discard.
func NewNamespace() (fd int, note string, err error) {
	type result struct {
		fd   int
		note string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // no unlock: this thread ends up in the new namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{-1, "", fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{-1, "", fmt.Errorf("open new network namespace: %w", err)}
			return
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			unix.Close(fd)
			done <- result{-1, "", fmt.Errorf("netlink in new namespace: %w", err)}
			return
		}
		defer h.Close()
		note, err := SetupLoopback(h)
		if err != nil {
			unix.Close(fd)
			done <- result{-1, "", fmt.Errorf("new namespace: %w", err)}
			return
		}
		done <- result{fd, note, nil}
	}()
	r := <-done
	return r.fd, r.note, r.err
}
