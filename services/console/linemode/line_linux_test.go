package linemode

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/console/client"
	"github.com/kwyre/kwyre/services/console/internal/servicetest"
	"github.com/kwyre/kwyre/tools/testmodel"
)

const step = 60 * time.Second // generous: a loaded 2-core machine, TCG neighbours

// startLine runs the line chat on a fresh pty against svc, as the appliance
// runs it on ttyS0.

func TestMain(m *testing.M) { servicetest.Main(m) }

func startLine(t *testing.T, svc *servicetest.Service) (*servicetest.PTY, func() error) {
	t.Helper()
	p := servicetest.OpenPTY(t)
	tty, err := os.OpenFile(p.Path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	restore, err := SetRaw(int(tty.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	key, err := client.ReadKeyFile(svc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(svc.URL, key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, tty, tty, Options{Client: c, KeyFile: svc.KeyFile, Echo: true, Poll: 100 * time.Millisecond})
	}()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			restore()
			return err
		case <-time.After(step):
			t.Fatal("line chat did not stop after cancel")
			return nil
		}
	}
	t.Cleanup(func() { cancel() })
	return p, stop
}

// turn types msg (ended by end) and returns the streamed reply.
func turn(t *testing.T, p *servicetest.PTY, msg, end string) string {
	t.Helper()
	return turnEcho(t, p, msg, msg, end)
}

// turnEcho is turn for a message whose echo differs from what is typed.
func turnEcho(t *testing.T, p *servicetest.PTY, msg, echo, end string) string {
	t.Helper()
	p.Send(t, msg+end)
	p.Expect(t, echo+"\r\n"+PromptKwyre, step) // echo, then the reply prompt
	out := p.Expect(t, "\r\n"+PromptYou, step)
	return strings.TrimSuffix(out, "\r\n"+PromptYou)
}

func TestLineModeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the inference service")
	}
	servicetest.Binary(t) // build before the clock starts
	svc := servicetest.Prepare(t, servicetest.Options{})
	p, stop := startLine(t, svc)

	// Started before the service: it says so and keeps trying.
	p.Expect(t, "kwyre: waiting for the inference service\r\n", step)
	svc.Launch(t)
	p.Expect(t, Ready+"\r\n"+PromptYou, step)

	if got := turn(t, p, "Hello, who are you?", "\r"); got != testmodel.DemoReply {
		t.Fatalf("reply %q, want the demo sentence %q", got, testmodel.DemoReply)
	}
	// A serial terminal may send LF or CRLF instead of CR.
	if got := turn(t, p, "And again", "\r\n"); got != testmodel.DemoReply {
		t.Fatalf("second reply %q", got)
	}
	p.Send(t, "/new\n")
	p.Expect(t, NewSession+"\r\n"+PromptYou, step)
	if got := turnEcho(t, p, "Typo\x7f\x7fpo fixed", "Typo\b \b\b \bpo fixed", "\r"); got != testmodel.DemoReply {
		t.Fatalf("reply in the new session %q", got)
	}
	p.Send(t, "/help\r")
	p.Expect(t, "/wipe", step)
	p.Expect(t, PromptYou, step)
	p.Send(t, "/wipe\r")
	p.Expect(t, clearScreen+Wiped+"\r\n"+PromptYou, step)
	// /audit prints the service's answer on one line: JSON an auditor (or
	// the QEMU tests) can read off the serial console.
	p.Send(t, "/audit\r")
	p.Expect(t, "/audit\r\n"+AuditPrefix, step)
	line := strings.TrimSuffix(p.Expect(t, "\r\n"+PromptYou, step), "\r\n"+PromptYou)
	var audit struct {
		SecurityControls struct {
			NetworkBinding string `json:"network_binding"`
			NetworkDrivers string `json:"network_drivers"`
		} `json:"security_controls"`
	}
	if err := json.Unmarshal([]byte(line), &audit); err != nil || audit.SecurityControls.NetworkDrivers == "" ||
		!strings.Contains(audit.SecurityControls.NetworkBinding, "localhost only") {
		t.Fatalf("/audit printed %q (%v)", line, err)
	}
	p.Send(t, "/nonsense\r")
	p.Expect(t, "kwyre: unknown command, try /help\r\n"+PromptYou, step)

	// The service restarts (its sessions die with it): the chat says so,
	// waits, and carries on with a new session.
	svc.Stop(t)
	p.Send(t, "Are you there?\r")
	p.Expect(t, "kwyre: inference service unreachable, retrying\r\n", step)
	svc.Launch(t)
	p.Expect(t, "kwyre: service is back\r\n"+PromptYou, step)
	if got := turn(t, p, "Back again", "\r"); got != testmodel.DemoReply {
		t.Fatalf("reply after the restart %q", got)
	}

	if n := strings.Count(p.All(), Ready); n != 1 {
		t.Fatalf("%q printed %d times, want once", Ready, n)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Stopping ended (wiped) the session on the service.
	key, _ := client.ReadKeyFile(svc.KeyFile)
	c, _ := client.New(svc.URL, key)
	a, err := c.Audit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.ActiveSessions != 0 {
		t.Fatalf("active_sessions = %d after the console stopped, want 0", a.ActiveSessions)
	}
}

func TestLineModeWrongKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the inference service")
	}
	svc := servicetest.Start(t, servicetest.Options{})
	svc.WaitReady(t, step)
	p := servicetest.OpenPTY(t)
	tty, err := os.OpenFile(p.Path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if _, err := SetRaw(int(tty.Fd())); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(svc.URL, []byte("wrong-key"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, tty, tty, Options{Client: c, Echo: true, Poll: 100 * time.Millisecond}) }()
	p.Expect(t, Ready+"\r\n", step)
	p.Expect(t, "kwyre: API key rejected (401)\r\n", step)
	p.Expect(t, PromptYou, step)
	p.Send(t, "hi\r")
	p.Expect(t, "kwyre: API key rejected (401)\r\n"+PromptYou, step)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Line mode on a pipe (no terminal): no echo, lines served in order, the
// input's end ends the chat.
func TestLineModePipe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the inference service")
	}
	svc := servicetest.Start(t, servicetest.Options{})
	key, err := client.ReadKeyFile(svc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(svc.URL, key)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	in := strings.NewReader("first\n/new\nlast line without newline")
	if err := Run(context.Background(), in, &out, Options{Client: c, Poll: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	// Progress lines before ready depend on timing; cut them off.
	i := strings.Index(got, Ready+"\n")
	if i < 0 {
		t.Fatalf("no ready line in %q", got)
	}
	want := Ready + "\n" +
		PromptYou + PromptKwyre + testmodel.DemoReply + "\n" +
		PromptYou + NewSession + "\n" +
		PromptYou + PromptKwyre + testmodel.DemoReply + "\n" +
		PromptYou
	if got[i:] != want {
		t.Fatalf("output\n%q\nwant\n%q", got[i:], want)
	}
}

// Untouched for the idle period, the chat ends its session and clears the
// screen, as the service wipes idle sessions.
func TestLineModeIdleWipe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the inference service")
	}
	svc := servicetest.Start(t, servicetest.Options{})
	key, err := client.ReadKeyFile(svc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(svc.URL, key)
	if err != nil {
		t.Fatal(err)
	}
	p := servicetest.OpenPTY(t)
	tty, err := os.OpenFile(p.Path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if _, err := SetRaw(int(tty.Fd())); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Run(ctx, tty, tty, Options{Client: c, Echo: true, Poll: 100 * time.Millisecond, IdleWipe: 3 * time.Second})
	p.Expect(t, Ready+"\r\n"+PromptYou, step)
	if got := turn(t, p, "Remember this", "\r"); got != testmodel.DemoReply {
		t.Fatalf("reply %q", got)
	}
	p.Send(t, "half a line")
	p.Expect(t, clearScreen+IdleWiped+"\r\n"+PromptYou, step)
	a, err := c.Audit(context.Background())
	if err != nil || a.ActiveSessions != 0 {
		t.Fatalf("active sessions %d (%v) after the idle wipe, want 0", a.ActiveSessions, err)
	}
	// The dropped half line does not come back; the next turn opens a session.
	if got := turn(t, p, "Hello", "\r"); got != testmodel.DemoReply {
		t.Fatalf("reply after the idle wipe %q", got)
	}
}

// A session that outgrows the model's context: the chat says so in a
// status line, keeps running, and /new gets a working session back.
func TestLineModeContextFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the inference service")
	}
	svc := servicetest.Start(t, servicetest.Options{Args: []string{"-ctx", "96"}})
	key, err := client.ReadKeyFile(svc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(svc.URL, key)
	if err != nil {
		t.Fatal(err)
	}
	p := servicetest.OpenPTY(t)
	tty, err := os.OpenFile(p.Path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if _, err := SetRaw(int(tty.Fd())); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Run(ctx, tty, tty, Options{Client: c, Echo: true, Poll: 100 * time.Millisecond})
	p.Expect(t, Ready+"\r\n"+PromptYou, step)
	full := false
	for i := 0; i < 10 && !full; i++ {
		p.Send(t, "Tell me more about it\r")
		out := p.Expect(t, "\r\n"+PromptYou, step)
		switch {
		case strings.Contains(out, ContextFull), strings.Contains(out, ReplyCut):
			full = true
			t.Logf("turn %d: %q", i, out)
		case !strings.HasSuffix(out, testmodel.DemoReply+"\r\n"+PromptYou):
			t.Fatalf("turn %d: %q", i, out)
		}
	}
	if !full {
		t.Fatal("ten turns in a 96-token context and no context-full notice")
	}
	p.Send(t, "/new\r")
	p.Expect(t, NewSession+"\r\n"+PromptYou, step)
	if got := turn(t, p, "Fresh start", "\r"); got != testmodel.DemoReply {
		t.Fatalf("reply after /new %q", got)
	}
}
