package api

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/inference/scrub"
	"github.com/kwyre/kwyre/services/inference/scrub/scrubtest"
)

// The package's tests run as the service does: with the garbage collector
// overwriting what it frees.
func TestMain(m *testing.M) {
	if err := scrub.EnsureFreedClobbered(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestConnectionCloseLeavesNoResidue sends a request whose message holds a
// canary on a connection the client closes after it (Connection: close).
// net/http read it through a pooled 4 KiB buffer that no later read on the
// connection overwrites, and pools it as it is. After a wipe, the
// collections the wipe starts must leave no copy anywhere in the process.
func TestConnectionCloseLeavesNoResidue(t *testing.T) {
	if !scrub.FreedClobbered() {
		t.Fatal("the test runs without GODEBUG=clobberfree=1")
	}
	s, url, key := startServer(t, Config{})
	canary := scrubtest.Canary(t)
	host := strings.TrimPrefix(url, "http://")

	// The request is built outside the Go heap, so the client leaves no copy.
	m, err := syscall.Mmap(-1, 0, 8192, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	body := append(append(append(m[4096:4096], `{"messages":[{"role":"user","content":"`...), canary...), `"}]}`...)
	req := append(m[:0], "POST /v1/chat/completions HTTP/1.1\r\nHost: "...)
	req = append(append(req, host...), "\r\nAuthorization: Bearer "...)
	req = append(append(req, key...), "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "...)
	req = append(strconv.AppendInt(req, int64(len(body)), 10), "\r\n\r\n"...)
	req = append(req, body...)

	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	clear(m)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(c) // the server closes the connection
	c.Close()
	if err != nil || !strings.HasPrefix(string(answer), "HTTP/1.1 ") {
		t.Fatalf("answer %q, %v", answer, err)
	}

	before := scrub.Collections()
	s.WipeAll("test")
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := scrubtest.Count(t, canary) // 1: the canary itself
		if scrub.Collections() > before && n == 1 {
			return
		}
		if time.Now().After(deadline) {
			scrubtest.LogHits(t, canary)
			t.Fatalf("%d copies of the request's message in memory 10 s after the wipe (%d collections since)", n-1, scrub.Collections()-before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
