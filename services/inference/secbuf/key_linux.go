package secbuf

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// unlockedKeys counts keys whose page could not be mlocked (RLIMIT_MEMLOCK);
// they still stay out of core dumps and out of the Go heap.
var unlockedKeys atomic.Int64

// keyPage is one anonymous page outside the Go heap that holds a session key:
// mlocked when the limit allows, never in a core dump, not inherited by fork.
type keyPage struct {
	mem []byte
}

func newKeyPage() (*keyPage, error) {
	size := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mmap key page: %w", err)
	}
	if err := unix.Madvise(mem, unix.MADV_DONTDUMP); err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("madvise key page MADV_DONTDUMP: %w", err)
	}
	// Best effort: a child of this process never sees the key.
	_ = unix.Madvise(mem, unix.MADV_WIPEONFORK)
	if err := unix.Mlock(mem); err != nil {
		unlockedKeys.Add(1)
	}
	return &keyPage{mem: mem}, nil
}

// key returns the 32 key bytes at the start of the page.
func (p *keyPage) key() []byte { return p.mem[:KeySize] }

// destroy zeroes the page and unmaps it.
func (p *keyPage) destroy() {
	if p.mem == nil {
		return
	}
	p.zero()
	unix.Munlock(p.mem)
	unix.Munmap(p.mem)
	p.mem = nil
}

// zero overwrites the whole page.
func (p *keyPage) zero() { clear(p.mem) }

// UnlockedKeys reports how many session keys could not be mlocked.
func UnlockedKeys() int64 { return unlockedKeys.Load() }
