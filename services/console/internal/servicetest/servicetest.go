// Package servicetest runs the real inference service (the kwyre-inference
// binary, built from this checkout) with the demo model, for the console's
// end-to-end tests.
package servicetest

import (
	"bytes"
	"context"
	"fmt"
	"net"
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

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// Binary builds kwyre-inference once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "kwyre-console-test-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "kwyre-inference")
		buildErr = goBuild(binPath, "github.com/kwyre/kwyre/services/inference/cmd/kwyre-inference")
	})
	if buildErr != nil {
		t.Fatalf("build kwyre-inference: %v", buildErr)
	}
	return binPath
}

// Main runs a package's tests and then removes the binaries they built;
// call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	for _, d := range append(extraDirs, buildDir) {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	os.Exit(code)
}

// TempDir is a folder for binaries a test builds, removed by Main.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kwyre-console-bin-")
	if err != nil {
		t.Fatal(err)
	}
	extraDirs = append(extraDirs, dir)
	return dir
}

var extraDirs []string

// GoBuild builds pkg into out with the environment `make env` gives, so the
// tests also work when run with a plain `go test`.
func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = BuildEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, stderr.String())
	}
	return nil
}

// GoBuild builds a package of this module into out.
func GoBuild(t testing.TB, out, pkg string) {
	t.Helper()
	if err := goBuild(out, pkg); err != nil {
		t.Fatal(err)
	}
}

// BuildEnv is the process environment plus what the Makefile exports: the
// runtime/secret experiment, cgo, and llama.h's include path.
func BuildEnv() []string {
	env := os.Environ()
	set := func(k, v string) {
		if os.Getenv(k) == "" {
			env = append(env, k+"="+v)
		}
	}
	set("GOEXPERIMENT", "runtimesecret")
	set("CGO_ENABLED", "1")
	if os.Getenv("CGO_CPPFLAGS") == "" {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/ollama/ollama").Output()
		if err == nil {
			dir := strings.TrimSpace(string(out))
			env = append(env, "CGO_CPPFLAGS=-I"+dir+"/llama/llama.cpp/include -I"+dir+"/ml/backend/ggml/ggml/include")
		}
	}
	return env
}

// Service is a running kwyre-inference.
type Service struct {
	URL     string // http://127.0.0.1:PORT
	KeyFile string // the API key, mode 0600
	Key     string
	Model   string
	cmd     *exec.Cmd
	done    chan error
	log     *lockedBuffer
	args    []string
}

// Options for Start.
type Options struct {
	Delay time.Duration // start the process this long after Start returns (0 = now)
	Args  []string      // extra flags
}

// Prepare writes the demo model and a key file and picks a free port, but
// starts nothing: tests that start the console first call Launch later.
func Prepare(t testing.TB, o Options) *Service {
	t.Helper()
	dir := t.TempDir()
	model := filepath.Join(dir, "demo.gguf")
	if err := testmodel.WriteFile(model, testmodel.Options{Preset: "demo", Type: "f32", Seed: 1}); err != nil {
		t.Fatalf("write demo model: %v", err)
	}
	key := "console-test-key-0123456789abcdef"
	keyFile := filepath.Join(dir, "api-key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	s := &Service{
		URL:     fmt.Sprintf("http://127.0.0.1:%d", port),
		KeyFile: keyFile, Key: key, Model: model,
		log: &lockedBuffer{},
	}
	s.args = append([]string{"-model", model, "-listen", fmt.Sprintf("127.0.0.1:%d", port),
		"-api-key-file", keyFile, "-ctx", "512", "-gpu-layers", "0"}, o.Args...)
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// Start prepares and launches the service; it does not wait for ready.
func Start(t testing.TB, o Options) *Service {
	s := Prepare(t, o)
	s.Launch(t)
	return s
}

// Launch starts the service process.
func (s *Service) Launch(t testing.TB) {
	t.Helper()
	bin := Binary(t)
	s.cmd = exec.Command(bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start kwyre-inference: %v", err)
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
}

// WaitReady polls /health until the service is ready.
func (s *Service) WaitReady(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			cancel()
			if strings.Contains(b.String(), `"ready"`) {
				return
			}
		} else {
			cancel()
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("kwyre-inference exited before ready: %v\n%s", err, s.log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("kwyre-inference not ready within %s\n%s", within, s.log.String())
}

// Stop sends SIGTERM (wipe all, exit 0) and waits.
func (s *Service) Stop(t testing.TB) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case err := <-s.done:
		s.done <- err
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Log is what the service printed so far.
func (s *Service) Log() string { return s.log.String() }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
