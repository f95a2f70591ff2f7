package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Patches to the pinned binding module: ../binding-patches go into this
// program's own build (tools/binding-patch.sh, through the Makefile's
// -modfile), ../cuda-patches into the CUDA backend (qa/gpu/build-cuda.sh).
// Each must still apply to the pinned version, so that a bump of the module
// fails here and not later in a build.
func TestBindingPatchesApply(t *testing.T) { checkPatchesApply(t, "../binding-patches") }

func TestCUDAPatchesApply(t *testing.T) { checkPatchesApply(t, "../cuda-patches") }

func checkPatchesApply(t *testing.T, folder string) {
	patches, err := filepath.Glob(filepath.Join(folder, "*.patch"))
	if err != nil || len(patches) == 0 {
		t.Fatalf("no patches in %s (%v)", folder, err)
	}
	// The builds apply the patches in order, a later one may change what an
	// earlier one added: apply them so, to a copy of the files they name
	// (the module cache is read-only).
	src, dir := upstreamBinding(t), t.TempDir()
	for _, p := range patches {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			name, ok := strings.CutPrefix(line, "+++ b/")
			if !ok {
				continue
			}
			name = strings.Fields(name)[0]
			dst := filepath.Join(dir, name)
			if _, err := os.Stat(dst); err == nil {
				continue // copied for an earlier patch: keep its changes
			}
			data, err := os.ReadFile(filepath.Join(src, name))
			if err != nil {
				t.Fatalf("%s names %s: %v", filepath.Base(p), name, err)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		// --forward fails on a patch that is already in the sources; --fuzz=0
		// as the builds: every context line must match.
		cmd := exec.Command("patch", "-p1", "--forward", "--fuzz=0", "--quiet", "-d", dir, "-i", abs)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s does not apply to %s after the patches before it: %v\n%s", filepath.Base(p), src, err, out)
		}
	}
}

// upstreamBinding is the pinned module as the module cache holds it: without
// the Makefile's -modfile, which points at the patched copy.
func upstreamBinding(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/ollama/ollama")
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list the binding module: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" || strings.Contains(dir, "build/binding") {
		t.Fatalf("go list gave %q, not the module cache's copy", dir)
	}
	return dir
}
