package qa

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/console/linemode"
	"github.com/kwyre/kwyre/tools/testmodel"
)

var (
	readyRE = regexp.MustCompile(regexp.QuoteMeta(linemode.Ready))
	youRE   = regexp.MustCompile(regexp.QuoteMeta(linemode.PromptYou))
	// The reply streams after "kwyre> "; the next "you> " marks its end.
	replyRE = regexp.MustCompile(`(?s)` + regexp.QuoteMeta(linemode.PromptKwyre) + `(.*?)\n` + regexp.QuoteMeta(linemode.PromptYou))
	newRE   = regexp.MustCompile(regexp.QuoteMeta(linemode.NewSession))
)

// chat sends one line and returns the streamed reply.
func chat(t *testing.T, vm *VM, line string) string {
	t.Helper()
	if err := vm.Send(line + "\r"); err != nil {
		t.Fatalf("send %q: %v", line, err)
	}
	m, err := vm.Expect(replyRE, replyTimeout)
	if err != nil {
		t.Fatalf("reply to %q: %v", line, err)
	}
	return replyText(m[1])
}

// logLine matches what init copies to the serial console from services.
// ttyS0 is also /dev/console, so a log line can start anywhere, even right
// after the reply's last word before its newline.
var logLine = regexp.MustCompile(`(kwyre-init|inference|watchdog): [^\n]*`)

// replyText drops interleaved log text and blank lines from a captured reply.
func replyText(s string) string {
	var keep []string
	for _, l := range strings.Split(logLine.ReplaceAllString(s, ""), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestAppliance boots the image under test once and walks the whole
// session: ready, a chat turn with the demo model's sentence, /new and a
// second turn, then system_powerdown through QMP ending in a clean
// power-off (QEMU exits by itself, status 0).
func TestAppliance(t *testing.T) {
	dir := imageDir(t)
	vm := boot(t, filepath.Join(dir, "kwyre.img"), BootOptions{})
	if _, err := vm.Expect(readyRE, bootTimeout); err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Logf("boot to %q: %.1fs", linemode.Ready, vm.Since().Seconds())
	if _, err := vm.Expect(youRE, time.Minute); err != nil {
		t.Fatalf("first prompt: %v", err)
	}

	if got := chat(t, vm, "Hello, who are you?"); got != testmodel.DemoReply {
		t.Errorf("reply = %q, want %q", got, testmodel.DemoReply)
	}

	if err := vm.Send("/new\r"); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Expect(newRE, time.Minute); err != nil {
		t.Fatalf("/new: %v", err)
	}
	if got := chat(t, vm, "And now?"); got != testmodel.DemoReply {
		t.Errorf("reply after /new = %q, want %q", got, testmodel.DemoReply)
	}

	sent := time.Now()
	if _, err := vm.Monitor("system_powerdown"); err != nil {
		t.Fatalf("system_powerdown: %v", err)
	}
	if err := vm.Wait(offTimeout); err != nil {
		t.Fatalf("power-off after system_powerdown: %v", err)
	}
	t.Logf("power button to QEMU exit: %.1fs", time.Since(sent).Seconds())
	if out := vm.Output(); strings.Contains(out, "Kernel panic") {
		t.Errorf("the guest panicked:\n%s", vm.Tail(2000))
	}
}
