package engine

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// marker builds a distinctive text at run time, so that no copy of it sits
// in the test binary's read-only data. It lives in its own mapping: on the
// goroutine's stack a stack growth would leave a copy behind in the old
// stack, a residue of the test itself.
func marker(t *testing.T) []byte {
	m, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clear(m); syscall.Munmap(m) })
	b := append(m[:0], "KWYRE-RESIDUE-CANARY-"...)
	for i := range 24 {
		b = append(b, 'A'+byte((i*7+3)%26))
	}
	return b
}

// countInMemory counts occurrences of needle in this process's readable,
// writable memory (heap, stacks, C heap, anonymous mappings).
func countInMemory(t *testing.T, needle []byte) int {
	t.Helper()
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	defer maps.Close()
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Skipf("no /proc/self/mem: %v", err)
	}
	defer mem.Close()
	// The scan buffer lies outside the Go heap and is itself skipped, so the
	// scan never counts its own copies.
	buf, err := syscall.Mmap(-1, 0, 1<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(buf)
	self := uint64(uintptr(unsafe.Pointer(&buf[0])))
	n := 0
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[1], "rw") || (len(f) >= 6 && strings.HasPrefix(f[5], "[v")) {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		a, _ := strconv.ParseUint(lo, 16, 64)
		z, _ := strconv.ParseUint(hi, 16, 64)
		if a <= self && self < z {
			continue
		}
		for off := a; off < z; {
			m := min(uint64(len(buf)), z-off)
			k, _ := mem.ReadAt(buf[:m], int64(off))
			if k <= 0 {
				break
			}
			n += bytes.Count(buf[:k], needle)
			clear(buf[:k])
			// Overlap chunks by len(needle)-1 so no hit is cut in two.
			if uint64(k) < m || off+uint64(k) >= z {
				off += uint64(k)
			} else {
				off += uint64(k) - uint64(len(needle)-1)
			}
		}
	}
	return n
}

// TestNoPlaintextResidue runs a conversation through the engine, wipes
// everything the caller owns and the slot, and looks for the user's text
// anywhere in the process's writable memory.
func TestNoPlaintextResidue(t *testing.T) {
	e := load(t, "demo", Config{Slots: 1, ContextSize: 512})
	needle := marker(t)
	if n := countInMemory(t, needle); n != 1 { // the needle itself
		logHits(t, needle)
		t.Fatalf("%d copies before the conversation", n)
	}

	// Built in place: a buffer that grew would leave an unwiped copy behind.
	content := make([]byte, 0, 128)
	content = append(content, "Please remember "...)
	content = append(content, needle...)
	content = append(content, " for me, it matters."...)
	msgs := []Message{{Role: "user", Content: content}}
	text, err := e.RenderChat(msgs, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := e.Tokenize(text, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := acquire(t, e, "alice")
	var reply []byte
	if _, err := s.Generate(context.Background(), toks, Sampling{MaxTokens: 64}, func(b []byte) error {
		reply = append(reply, b...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := countInMemory(t, needle); n < 3 {
		t.Fatalf("the scan finds only %d copies while the text is in use", n)
	}
	clear(content)
	clear(text[:cap(text)])
	clear(toks[:cap(toks)])
	clear(reply)
	s.Wipe()
	s.Release()
	if n := countInMemory(t, needle); n != 1 {
		t.Errorf("%d copies of the user's text left after wiping (want only the test's own)", n-1)
		logHits(t, needle)
	}
}

// logHits logs where each copy of needle lies and what surrounds it, to
// find the code that left it.
func logHits(t *testing.T, needle []byte) {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		return
	}
	defer mem.Close()
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if !strings.HasPrefix(f[1], "rw") || (len(f) >= 6 && strings.HasPrefix(f[5], "[v")) {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		a, _ := strconv.ParseUint(lo, 16, 64)
		z, _ := strconv.ParseUint(hi, 16, 64)
		buf, err := syscall.Mmap(-1, 0, int(z-a), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			continue
		}
		k, _ := mem.ReadAt(buf, int64(a))
		for off := 0; k > 0; {
			i := bytes.Index(buf[off:k], needle)
			if i < 0 {
				break
			}
			p := off + i
			s := max(0, p-100)
			t.Logf("hit in %s at +%#x: %q", line, p, buf[s:min(k, p+len(needle)+60)])
			off = p + 1
		}
		syscall.Munmap(buf)
	}
}
