package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kwyre/kwyre/tools/testmodel"
)

// These tests build the real binary and run it as a child process: signals,
// exit codes and everything it prints are what the appliance sees.

var (
	binPath  string
	modelDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kwyre-inference-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "kwyre-inference")
	modelDir = dir
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build kwyre-inference:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	for _, p := range []string{"demo", "tiny"} {
		if err := testmodel.WriteFile(filepath.Join(dir, p+".gguf"), testmodel.Options{Preset: p, Seed: 1}); err != nil {
			fmt.Fprintln(os.Stderr, "generate model:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a child's output from two pipes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	base string
	key  string
	done chan error
}

// launch starts the binary and waits for "ready".
func launch(t *testing.T, args ...string) *proc {
	t.Helper()
	return launchBin(t, binPath, nil, args...)
}

// launchBin starts bin with env added to the environment.
func launchBin(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "api-key")
	args = append([]string{"-listen", "127.0.0.1:0", "-api-key-file", keyFile, "-gpu-layers", "0", "-threads", "1"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, out: out, done: make(chan error, 1)}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.Write([]byte(sc.Text() + "\n"))
			lines <- sc.Text()
		}
		close(lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("exited before ready:\n%s", out)
			}
			if addr, ok := strings.CutPrefix(line, "kwyre-inference: listening on "); ok {
				p.base = addr
			}
			if line == "kwyre-inference: ready" {
				key, err := os.ReadFile(keyFile)
				if err != nil {
					t.Fatal(err)
				}
				p.key = strings.TrimSpace(string(key))
				go func() {
					for range lines {
					}
				}()
				return p
			}
		case <-deadline:
			t.Fatalf("not ready in 60s:\n%s", out)
		}
	}
}

func (p *proc) call(method, path, body string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *proc) session() string {
	p.t.Helper()
	code, b := p.call("POST", "/v1/session", "")
	var r struct {
		SessionID string `json:"session_id"`
	}
	if code != 200 || json.Unmarshal([]byte(b), &r) != nil {
		p.t.Fatalf("session: %d %s", code, b)
	}
	return r.SessionID
}

func (p *proc) signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

// wait returns the exit code, failing after timeout.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		p.t.Fatalf("still running after %s:\n%s", timeout, p.out)
		return -1
	}
}

func chatBody(session, text string, stream bool) string {
	t, _ := json.Marshal(text)
	s := ""
	if session != "" {
		s = `"session_id":"` + session + `",`
	}
	return fmt.Sprintf(`{%s"stream":%v,"temperature":0,"messages":[{"role":"user","content":%s}]}`, s, stream, t)
}

func TestSignals(t *testing.T) {
	p := launch(t, "-model", filepath.Join(modelDir, "demo.gguf"))
	id := p.session()
	if code, b := p.call("POST", "/v1/chat/completions", chatBody(id, "hello", false)); code != 200 || !strings.Contains(b, testmodel.DemoReply) {
		t.Fatalf("chat: %d %s", code, b)
	}

	// SIGUSR1: every session wiped, the service keeps serving.
	p.signal(syscall.SIGUSR1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := p.call("POST", "/v1/chat/completions", chatBody(id, "again", false))
		if code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session still alive after SIGUSR1 (%d)", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, b := p.call("POST", "/v1/chat/completions", chatBody("", "still there?", false)); code != 200 || !strings.Contains(b, testmodel.DemoReply) {
		t.Fatalf("after SIGUSR1: %d %s", code, b)
	}
	_, m := p.call("GET", "/metrics", "")
	for _, want := range []string{`kwyre_session_wipes_total{reason="sigusr1"} 1`, `kwyre_wipe_all_total{reason="sigusr1"} 1`} {
		if !strings.Contains(m, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}

	// SIGTERM: wipe all, exit 0.
	p.session()
	p.signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.out)
	}
	out := p.out.String()
	if !strings.Contains(out, "all sessions wiped") || !strings.Contains(out, "reason=shutdown sessions=1") {
		t.Fatalf("no wipe on SIGTERM in the log:\n%s", out)
	}
}

// TestNotDumpable runs the service as an unprivileged user: /proc/PID files
// of a process that is not dumpable belong to root instead of its owner.
func TestNotDumpable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the service as another user")
	}
	const nobody = 65534
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	for _, d := range []string{modelDir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755)
	}
	keyFile := filepath.Join(dir, "api-key")
	os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	os.Chown(keyFile, nobody, nobody)
	cmd := exec.Command(binPath, "-model", filepath.Join(modelDir, "demo.gguf"), "-listen", "127.0.0.1:0",
		"-api-key-file", keyFile, "-gpu-layers", "0", "-threads", "1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Signal(syscall.SIGTERM)
	pid := cmd.Process.Pid
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "ready") {
		if time.Now().After(deadline) || strings.Contains(out.String(), "kwyre-inference: ") && cmd.ProcessState != nil {
			t.Fatalf("not ready:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := os.Stat(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 0 {
		t.Fatalf("/proc/PID/environ owned by uid %d, not root: the process is dumpable", uid)
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(limits), "\n") {
		if strings.HasPrefix(l, "Max core file size") {
			if f := strings.Fields(l); len(f) < 6 || f[4] != "0" || f[5] != "0" {
				t.Fatalf("core limit not 0: %q", l)
			}
		}
	}
	if !strings.Contains(out.String(), "memory=") {
		t.Fatalf("mlockall outcome not logged:\n%s", out.String())
	}
}

func TestLogsHoldNoContent(t *testing.T) {
	const secret = "Quasimodo-ultraviolet-7731"
	p := launch(t, "-model", filepath.Join(modelDir, "demo.gguf"), "-idle-timeout", "1s")
	id := p.session()
	for i, stream := range []bool{false, true, false} {
		text := fmt.Sprintf("%s turn %d: please remember %s", secret, i, secret)
		if code, b := p.call("POST", "/v1/chat/completions", chatBody(id, text, stream)); code != 200 {
			t.Fatalf("turn %d: %d %s", i, code, b)
		}
	}
	p.call("POST", "/v1/chat/completions", chatBody("", secret+" stateless", true))
	// Requests that fail must not echo content into the log either.
	p.call("POST", "/v1/chat/completions", `{"messages":[{"role":"`+secret+`","content":"`+secret+`"}]}`)
	p.call("POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"`+secret+`\q"}]}`)
	p.call("POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"`+secret)
	p.call("POST", "/v1/session/end", `{"session_id":"`+id+`"}`)
	other := p.session()
	p.call("POST", "/v1/chat/completions", chatBody(other, secret, false))
	time.Sleep(1500 * time.Millisecond) // idle timeout wipes it
	p.signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	out := p.out.String()
	if len(out) < 200 {
		t.Fatalf("suspiciously little output captured:\n%s", out)
	}
	for _, s := range []string{secret, "Quasimodo", "ultraviolet", "please remember", testmodel.DemoReply, "appliance works"} {
		if strings.Contains(out, s) {
			t.Fatalf("log output contains %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, `reason=idle_timeout`) || !strings.Contains(out, `reason=end`) {
		t.Fatalf("expected wipe lines missing:\n%s", out)
	}
}

func TestStartRefusals(t *testing.T) {
	dir := t.TempDir()
	demo := filepath.Join(modelDir, "demo.gguf")
	whole, _ := os.ReadFile(demo)
	truncated := filepath.Join(dir, "truncated.gguf")
	os.WriteFile(truncated, whole[:len(whole)/3], 0o644)
	notGGUF := filepath.Join(dir, "model.gguf")
	os.WriteFile(notGGUF, []byte("#!/bin/sh\necho not a model\n"), 0o644)
	loose := filepath.Join(dir, "loose-key")
	os.WriteFile(loose, []byte("0123456789abcdef0123456789"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no model", nil, "no model"},
		{"missing model", []string{"-model", filepath.Join(dir, "nope.gguf")}, "no such file"},
		{"truncated", []string{"-model", truncated}, "model rejected"},
		{"not gguf", []string{"-model", notGGUF}, "model rejected"},
		{"sha mismatch", []string{"-model", demo, "-model-sha256", strings.Repeat("ab", 32)}, "sha256 mismatch"},
		{"every interface", []string{"-model", demo, "-listen", "0.0.0.0:0"}, "every interface"},
		{"empty host", []string{"-model", demo, "-listen", ":0"}, "every interface"},
		{"lan address", []string{"-model", demo, "-listen", "10.1.2.3:8000"}, "not a loopback"},
		{"readable key", []string{"-model", demo, "-api-key-file", loose}, "group or others"},
		{"stray argument", []string{"-model", demo, "extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-listen", "127.0.0.1:0", "-api-key-file", filepath.Join(t.TempDir(), "k"), "-gpu-layers", "0"}, tt.args...)
			cmd := exec.Command(binPath, args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			done := make(chan error, 1)
			cmd.Start()
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running:\n%s", out.String())
			}
			code := cmd.ProcessState.ExitCode()
			if code == 0 || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("exit %d, output:\n%s\nwant %q", code, out.String(), tt.want)
			}
			for _, bad := range []string{"panic", "goroutine ", "SIGSEGV", "SIGABRT"} {
				if strings.Contains(out.String(), bad) {
					t.Fatalf("crashed instead of a clear error:\n%s", out.String())
				}
			}
		})
	}
}

func TestGeneratedKey(t *testing.T) {
	cmd := exec.Command(binPath, "-model", filepath.Join(modelDir, "demo.gguf"), "-listen", "127.0.0.1:0", "-gpu-layers", "0")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	var keyPath string
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "kwyre-inference: API key written to "); ok {
			keyPath = strings.TrimSuffix(rest, " (mode 0600)")
			break
		}
	}
	if keyPath == "" {
		t.Fatal("no key path printed")
	}
	defer os.RemoveAll(filepath.Dir(keyPath))
	st, err := os.Stat(keyPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v %v", keyPath, err, st.Mode())
	}
}
