package engine

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The CUDA backend is built from the pinned module's sources with the patches
// in services/inference/cuda-patches (qa/gpu/build-cuda.sh). Each must still
// apply to the pinned version, so that a bump of the module fails here and not
// later on a GPU build machine.
func TestCUDAPatchesApply(t *testing.T) {
	patches, err := filepath.Glob("../cuda-patches/*.patch")
	if err != nil || len(patches) == 0 {
		t.Fatalf("no patches in ../cuda-patches (%v)", err)
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/ollama/ollama").Output()
	if err != nil {
		t.Fatalf("go list the binding module: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	for _, p := range patches {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		// --dry-run writes nothing (the module cache is read-only);
		// --forward fails on a patch that is already in the sources; --fuzz=0
		// as build-cuda.sh: every context line must match.
		cmd := exec.Command("patch", "-p1", "--dry-run", "--forward", "--fuzz=0", "-d", dir, "-i", abs)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not apply to %s: %v\n%s", filepath.Base(p), dir, err, out)
		}
	}
}
