package servicetest

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// PTY is the controlling side of a pseudo-terminal; the console under test
// opens the other side by its path, as it opens /dev/ttyS0 in the appliance.
type PTY struct {
	Master *os.File
	Path   string // /dev/pts/N

	mu   sync.Mutex
	cond *sync.Cond
	out  bytes.Buffer // everything the console wrote
	pos  int          // Expect consumed out[:pos]
	err  error
}

// OpenPTY allocates a pseudo-terminal pair and starts collecting its output.
func OpenPTY(t testing.TB) *PTY {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	p := &PTY{Master: m, Path: fmt.Sprintf("/dev/pts/%d", n)}
	p.cond = sync.NewCond(&p.mu)
	go p.collect()
	t.Cleanup(func() { m.Close() })
	return p
}

func (p *PTY) collect() {
	buf := make([]byte, 4096)
	for {
		n, err := p.Master.Read(buf)
		p.mu.Lock()
		p.out.Write(buf[:n])
		if err != nil {
			p.err = err
		}
		p.cond.Broadcast()
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Send types s.
func (p *PTY) Send(t testing.TB, s string) {
	t.Helper()
	if _, err := p.Master.Write([]byte(s)); err != nil {
		t.Fatalf("write to pty: %v", err)
	}
}

// Expect waits until want appears in the output after what earlier Expects
// consumed, and returns the output from there up to the end of want.
func (p *PTY) Expect(t testing.TB, want string, within time.Duration) string {
	t.Helper()
	got, ok := p.expect(want, within)
	if !ok {
		t.Fatalf("waited %s for %q; output after the last match:\n%q", within, want, got)
	}
	return got
}

// ExpectRE is Expect for a regular expression.
func (p *PTY) ExpectRE(t testing.TB, re *regexp.Regexp, within time.Duration) string {
	t.Helper()
	got, ok := p.wait(func(rest string) int {
		if loc := re.FindStringIndex(rest); loc != nil {
			return loc[1]
		}
		return -1
	}, within)
	if !ok {
		t.Fatalf("waited %s for /%s/; output after the last match:\n%q", within, re, got)
	}
	return got
}

func (p *PTY) expect(want string, within time.Duration) (string, bool) {
	return p.wait(func(rest string) int {
		if i := strings.Index(rest, want); i >= 0 {
			return i + len(want)
		}
		return -1
	}, within)
}

// wait blocks until match finds an end in the unconsumed output.
func (p *PTY) wait(match func(rest string) int, within time.Duration) (string, bool) {
	deadline := time.Now().Add(within)
	timer := time.AfterFunc(within, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		rest := p.out.String()[p.pos:]
		if end := match(rest); end >= 0 {
			p.pos += end
			return rest[:end], true
		}
		if p.err != nil || !time.Now().Before(deadline) {
			return rest, false
		}
		p.cond.Wait()
	}
}

// All is everything the console wrote so far.
func (p *PTY) All() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// SetSize sets the terminal's size, as the VGA console has one.
func (p *PTY) SetSize(t testing.TB, cols, rows int) {
	t.Helper()
	ws := &unix.Winsize{Col: uint16(cols), Row: uint16(rows)}
	if err := unix.IoctlSetWinsize(int(p.Master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		t.Fatalf("set pty size: %v", err)
	}
}
