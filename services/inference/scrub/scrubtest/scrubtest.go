// Package scrubtest helps tests show that plaintext is gone from a
// process's memory: a canary that leaves no copy of its own, and a scan of
// every writable mapping for it.
package scrubtest

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// Canary builds a distinctive text at run time, so that no copy of it sits
// in the test binary's read-only data. It lives in its own mapping, unmapped
// when the test ends: on the goroutine's stack a stack growth would leave a
// copy behind in the old stack, a residue of the test itself.
func Canary(t testing.TB) []byte {
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

// Count counts occurrences of needle in this process's readable, writable
// memory (heap, stacks, C heap, anonymous mappings). It skips the test if
// /proc cannot be read. It allocates next to nothing on the Go heap, so
// that it never reuses, and thereby clears, freed memory it is looking at.
func Count(t testing.TB, needle []byte) int {
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
	// Both buffers lie outside the Go heap and are skipped, so the scan
	// never counts its own copies.
	buf, err := syscall.Mmap(-1, 0, 1<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(buf)
	text, err := syscall.Mmap(-1, 0, 1<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(text)
	nt := 0
	for nt < len(text) {
		k, err := maps.Read(text[nt:])
		nt += k
		if err != nil || k == 0 {
			break
		}
	}
	self := uint64(uintptr(unsafe.Pointer(&buf[0])))
	selfText := uint64(uintptr(unsafe.Pointer(&text[0])))
	n := 0
	for rest := text[:nt]; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		var f [6][]byte
		nf := fields(line, f[:])
		if nf < 2 || !bytes.HasPrefix(f[1], []byte("rw")) || (nf >= 6 && bytes.HasPrefix(f[5], []byte("[v"))) {
			continue
		}
		i := bytes.IndexByte(f[0], '-')
		if i < 0 {
			continue
		}
		a, z := hex(f[0][:i]), hex(f[0][i+1:])
		if a <= self && self < z || a <= selfText && selfText < z {
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
	clear(text)
	return n
}

// fields splits line at spaces into f, returning how many it filled.
func fields(line []byte, f [][]byte) int {
	n := 0
	for n < len(f) {
		line = bytes.TrimLeft(line, " ")
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			i = len(line)
		}
		f[n], line = line[:i], line[i:]
		n++
	}
	return n
}

// hex parses a /proc/self/maps address.
func hex(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		}
	}
	return v
}

// LogHits logs where each copy of needle lies and what surrounds it, to
// find the code that left it.
func LogHits(t testing.TB, needle []byte) {
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
