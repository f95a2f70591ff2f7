package scan

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestGPUWithoutDriver(t *testing.T) {
	g := NewGPU(filepath.Join(t.TempDir(), "libnvidia-ml.so.1"))
	defer g.Close()
	for range 2 { // stays skipped on every scan
		got, err := g.Scan(&Env{})
		reason, ok := Skipped(err)
		if !ok || !strings.Contains(reason, "no NVIDIA driver") || len(got) != 0 {
			t.Fatalf("got %v, %v; want skipped: no NVIDIA driver", got, err)
		}
	}
}
