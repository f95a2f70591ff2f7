package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kwyre/kwyre/tools/testmodel"
)

// scanMemory counts occurrences of needle in every readable mapping of pid.
func scanMemory(t *testing.T, pid int, needle []byte) (hits int, where []string) {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Skipf("cannot read the service's memory: %v", err)
	}
	defer mem.Close()
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[1][0] != 'r' {
			continue
		}
		lohi := strings.SplitN(f[0], "-", 2)
		lo, _ := strconv.ParseUint(lohi[0], 16, 64)
		hi, _ := strconv.ParseUint(lohi[1], 16, 64)
		if hi-lo > 1<<30 {
			continue
		}
		buf := make([]byte, hi-lo)
		n, _ := mem.ReadAt(buf, int64(lo))
		buf = buf[:n]
		name := "[anon]"
		if len(f) > 5 {
			name = f[5]
		}
		for off := 0; ; {
			i := bytes.Index(buf[off:], needle)
			if i < 0 {
				break
			}
			hits++
			where = append(where, fmt.Sprintf("%s+%#x", name, off+i))
			off += i + len(needle)
		}
	}
	return hits, where
}

// TestNoDecodedPlaintextAfterWipe holds a conversation, ends it, and scans
// the service's whole memory for the message text. The text travels
// JSON-escaped (é as \u00e9), so its decoded form exists only in buffers the
// service makes itself (parsed content, rendered prompt, session plaintext,
// llama.cpp's copies): none of those may keep it. The escaped form would
// stay in net/http's pooled connection buffers but for wipingConn, and the
// reply in its write buffers but for the padding after each answer.
func TestNoDecodedPlaintextAfterWipe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reading a non-dumpable process's memory needs root")
	}
	raw := make([]byte, 6)
	rand.Read(raw)
	tag := hex.EncodeToString(raw)
	decoded := []byte("Xylo\u00e9phone-" + tag + "-Quartz")
	escaped := `Xylo\u00e9phone-` + tag + `-Quartz`

	p := launch(t, "-model", filepath.Join(modelDir, "demo.gguf"))
	id := p.session()
	for i, stream := range []bool{false, true, false} {
		body := fmt.Sprintf(`{"session_id":%q,"stream":%v,"temperature":0,"messages":[{"role":"user","content":"%s turn %d"}]}`, id, stream, escaped, i)
		if code, b := p.call("POST", "/v1/chat/completions", body); code != 200 {
			t.Fatalf("turn %d: %d %s", i, code, b)
		}
	}
	for _, stream := range []bool{true, false} {
		body := fmt.Sprintf(`{"stream":%v,"temperature":0,"messages":[{"role":"system","content":"%s system"},{"role":"user","content":"%s stateless"}]}`, stream, escaped, escaped)
		if code, b := p.call("POST", "/v1/chat/completions", body); code != 200 {
			t.Fatalf("stateless: %d %s", code, b)
		}
	}
	// While the session lives its text is only ciphertext, so even now the
	// decoded form must be absent; then end it and look again.
	pid := p.cmd.Process.Pid
	if n, where := scanMemory(t, pid, decoded); n != 0 {
		t.Errorf("decoded message text found %d times while the session was live: %v", n, where)
	}
	if code, b := p.call("POST", "/v1/session/end", `{"session_id":"`+id+`"}`); code != 200 {
		t.Fatalf("end: %d %s", code, b)
	}
	if n, where := scanMemory(t, pid, decoded); n != 0 {
		t.Errorf("decoded message text found %d times after the session ended: %v", n, where)
	}
	// The demo reply as one run of text exists only in whole answers (the
	// model's vocabulary holds it in separate pieces).
	if n, where := scanMemory(t, pid, []byte(testmodel.DemoReply)); n != 0 {
		t.Errorf("the reply text found %d times after the session ended: %v", n, where)
	}
	// On a kept-alive connection the raw request is zeroed in net/http's
	// read buffer once the connection waits for the next request.
	if n, where := scanMemory(t, pid, []byte(escaped)); n != 0 {
		t.Errorf("the on-the-wire (escaped) text found %d times after the session ended: %v", n, where)
	}
	p.signal(syscall.SIGTERM)
	p.wait(15 * time.Second)
}
