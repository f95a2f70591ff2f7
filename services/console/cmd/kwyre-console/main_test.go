package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/console/client"
	"github.com/kwyre/kwyre/services/console/internal/servicetest"
	"github.com/kwyre/kwyre/tools/testmodel"
)

var (
	consoleOnce sync.Once
	consoleBin  string
)

func buildConsole(t *testing.T) string {
	t.Helper()
	consoleOnce.Do(func() {
		consoleBin = filepath.Join(servicetest.TempDir(t), "kwyre-console")
		servicetest.GoBuild(t, consoleBin, "github.com/kwyre/kwyre/services/console/cmd/kwyre-console")
	})
	if consoleBin == "" {
		t.Fatal("kwyre-console was not built")
	}
	return consoleBin
}

func TestMain(m *testing.M) { servicetest.Main(m) }

func TestFlagErrors(t *testing.T) {
	bin := buildConsole(t)
	key := filepath.Join(t.TempDir(), "key")
	os.WriteFile(key, []byte("k\n"), 0o600)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-mode", "gui", "-api-key-file", key}, `-mode "gui": want tui or line`},
		{[]string{"-mode", "line"}, "-api-key-file is required"},
		{[]string{"-mode", "line", "-api-key-file", key, "-url", "http://10.0.0.1:8000"}, "not a loopback address"},
		{[]string{"-mode", "line", "-api-key-file", key, "-url", "https://127.0.0.1:8000"}, "scheme must be http"},
		{[]string{"-mode", "line", "-api-key-file", key, "-tty", "/nonexistent/tty"}, "open terminal"},
		{[]string{"-mode", "line", "extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, tt.args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("%q: err %v, want a non-zero exit", tt.args, err)
		}
		if !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%q: stderr %q, want %q", tt.args, stderr.String(), tt.want)
		}
	}
}

// The real program on a pty, as init runs it on ttyS0: started before the
// service and before its key file exists, it waits, chats, and on SIGTERM
// ends its session on the service and exits 0.
func TestConsoleOnPTY(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the inference service")
	}
	const step = 60 * time.Second
	bin := buildConsole(t)
	servicetest.Binary(t)
	svc := servicetest.Prepare(t, servicetest.Options{})
	keyFile := filepath.Join(t.TempDir(), "console-key")

	p := servicetest.OpenPTY(t)
	cmd := exec.Command(bin, "-mode", "line", "-tty", p.Path, "-url", svc.URL, "-api-key-file", keyFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = []string{} // init gives no environment
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})

	p.Expect(t, "kwyre: waiting for the API key\r\n", step)
	key, err := os.ReadFile(svc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o400); err != nil {
		t.Fatal(err)
	}
	p.Expect(t, "kwyre: waiting for the inference service\r\n", step)
	svc.Launch(t)
	p.Expect(t, "kwyre: ready\r\nyou> ", step)
	p.Send(t, "Hello\r")
	p.Expect(t, "Hello\r\nkwyre> ", step)
	reply := p.Expect(t, "\r\nyou> ", step)
	if got := strings.TrimSuffix(reply, "\r\nyou> "); got != testmodel.DemoReply {
		t.Fatalf("reply %q", got)
	}
	p.Send(t, "/new\r")
	p.Expect(t, "kwyre: new session\r\nyou> ", step)

	c, err := client.New(svc.URL, bytes.TrimSpace(key))
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Audit(context.Background())
	if err != nil || a.ActiveSessions != 1 {
		t.Fatalf("active sessions %d (%v), want the console's one", a.ActiveSessions, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(step):
		t.Fatal("no exit after SIGTERM")
	}
	a, err = c.Audit(context.Background())
	if err != nil || a.ActiveSessions != 0 {
		t.Fatalf("active sessions %d (%v) after the console stopped, want 0", a.ActiveSessions, err)
	}
	if stderr.Len() != 0 {
		t.Fatalf("stderr: %q", stderr.String())
	}
}

// The full-screen chat as init runs it on tty1 (terminal on stdin/stdout,
// TERM=linux): a streamed turn, Ctrl-W clears screen and scrollback, and
// SIGTERM ends the session and exits 0.
func TestConsoleTUIOnPTY(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the inference service")
	}
	const step = 60 * time.Second
	bin := buildConsole(t)
	svc := servicetest.Start(t, servicetest.Options{})
	svc.WaitReady(t, step)

	p := servicetest.OpenPTY(t)
	p.SetSize(t, 120, 30)
	tty, err := os.OpenFile(p.Path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	cmd := exec.Command(bin, "-mode", "tui", "-url", svc.URL, "-api-key-file", svc.KeyFile)
	cmd.Stdin, cmd.Stdout = tty, tty
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = []string{"TERM=linux"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	// The status bar of the chat screen, once the session is open.
	p.ExpectRE(t, regexp.MustCompile(` session [0-9]+s `), step)
	p.Send(t, "Hello there\r")
	p.Expect(t, testmodel.DemoReply, step)
	p.Send(t, "\x17") // Ctrl-W
	p.Expect(t, "\x1b[H\x1b[2J\x1b[3J", step)
	p.Expect(t, "wiped: the conversation is gone", step)

	c, err := client.New(svc.URL, []byte(svc.Key))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(step):
		t.Fatal("no exit after SIGTERM")
	}
	a, err := c.Audit(context.Background())
	if err != nil || a.ActiveSessions != 0 {
		t.Fatalf("active sessions %d (%v) after the console stopped, want 0", a.ActiveSessions, err)
	}
	if stderr.Len() != 0 {
		t.Fatalf("stderr: %q", stderr.String())
	}
}
