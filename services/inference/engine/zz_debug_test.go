package engine

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func dumpHits(t *testing.T, needle []byte) {
	maps, _ := os.ReadFile("/proc/self/maps")
	mem, _ := os.Open("/proc/self/mem")
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
		buf, _ := syscall.Mmap(-1, 0, int(z-a), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
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
