package qa

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kwyre/kwyre/tools/testmodel"
)

// Deadlines are generous: the CI box has 2 cores shared with builds, and
// every boot runs under TCG.
const (
	bootTimeout  = 12 * time.Minute
	replyTimeout = 5 * time.Minute
	offTimeout   = 3 * time.Minute
)

// imageDir is the build folder holding the image under test.
func imageDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("KWYRE_QA_IMAGE")
	if dir == "" {
		tb.Skip("KWYRE_QA_IMAGE not set (make test-vm sets it)")
	}
	if _, err := os.Stat(filepath.Join(dir, "kwyre.img")); err != nil {
		tb.Fatalf("KWYRE_QA_IMAGE=%s: %v (run make image)", dir, err)
	}
	return dir
}

// repo returns a path relative to the repository root (tests run in qa/).
func repo(p string) string {
	abs, _ := filepath.Abs(filepath.Join("..", p))
	return abs
}

var demoOnce struct {
	sync.Once
	path string
	err  error
}

// demoModel generates the demo model once per test run.
func demoModel(tb testing.TB) string {
	tb.Helper()
	demoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kwyre-qa-model-")
		if err != nil {
			demoOnce.err = err
			return
		}
		demoOnce.path = filepath.Join(dir, "demo.gguf")
		demoOnce.err = testmodel.WriteFile(demoOnce.path, testmodel.Options{Preset: "demo", Seed: 1})
	})
	if demoOnce.err != nil {
		tb.Fatalf("demo model: %v", demoOnce.err)
	}
	return demoOnce.path
}

// debianKernel builds an image with Debian's kernel (build/debian-kernel)
// instead of Kwyre's.
var debianKernel = []string{"-kernel-flavour", "debian"}

// buildImage runs the real image builder (bin/kwyre-image) on the built
// programs with extra flags and returns the output folder. It runs in the
// repository root, where the kernel flavours' paths (build/...) lead; the
// default is Kwyre's kernel, as for make image.
func buildImage(tb testing.TB, model string, flags ...string) string {
	tb.Helper()
	out := tb.TempDir()
	bin := os.Getenv("KWYRE_QA_BIN")
	if bin == "" {
		bin = repo("bin")
	}
	args := append([]string{
		"-bin", bin,
		"-model", model,
		"-out", out,
	}, flags...)
	start := time.Now()
	cmd := exec.Command(filepath.Join(bin, "kwyre-image"), args...)
	cmd.Dir = repo(".")
	b, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("kwyre-image %s: %v\n%s", strings.Join(flags, " "), err, b)
	}
	tb.Logf("built image (%s) in %.1fs", strings.Join(flags, " "), time.Since(start).Seconds())
	return out
}

// boot starts the VM with its serial output logged to a file beside the
// test's temporary files, and kills it when the test ends.
func boot(tb testing.TB, image string, o BootOptions) *VM {
	tb.Helper()
	logPath := filepath.Join(tb.TempDir(), "serial.log")
	f, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	o.Log = f
	vm, err := Boot(image, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		vm.Kill()
		f.Close()
		if tb.Failed() {
			tb.Logf("serial console (last 4000 bytes):\n%s", vm.Tail(4000))
		}
	})
	return vm
}
