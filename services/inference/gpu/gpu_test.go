package gpu

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestNoDriver(t *testing.T) {
	p := Open("/nonexistent/libnvidia-ml.so.1")
	defer p.Close()
	if !errors.Is(p.Err(), ErrNoDriver) {
		t.Fatalf("Err() = %v, want ErrNoDriver", p.Err())
	}
	s := p.Snapshot()
	if s.Summary() != "none" || len(s.Devices) != 0 || s.Unavailable == "" {
		t.Fatalf("snapshot without driver = %+v", s)
	}
	if !strings.HasPrefix(s.String(), "gpu: none") {
		t.Fatalf("String() = %q", s.String())
	}
	if _, err := p.Processes(); !errors.Is(err, ErrNoDriver) {
		t.Fatalf("Processes() err = %v", err)
	}
}

func TestPlanLayers(t *testing.T) {
	const gb = 1 << 30
	eightB := ModelShape{FileBytes: 4_700_000_000, Layers: 32, EmbdKV: 1024}
	for _, tc := range []struct {
		name       string
		free       uint64
		m          ModelShape
		ctx, slots int
		want       int
	}{
		{"no memory", 0, eightB, 4096, 4, 0},
		{"all fit on 80 GB", 78 * gb, eightB, 8192, 4, 33},
		{"kv alone too big", 1 * gb, eightB, 8192, 4, 0},
		{"partial on 4 GB", 4 * gb, eightB, 2048, 1, 22},
		{"tiny model", 2 * gb, ModelShape{FileBytes: 1 << 20, Layers: 2, EmbdKV: 64}, 2048, 4, 3},
		// Prompts through cuBLAS: each slot's pool holds an FP16 copy of the
		// feed-forward weight (14336×4096), about 151 MB.
		{"partial on 4 GB, prompt scratch", 4 * gb, withScratch(eightB, 14336*4096), 2048, 1, 21},
		{"all fit on 80 GB, 16 slots' scratch", 78 * gb, withScratch(eightB, 14336*4096), 8192, 16, 33},
	} {
		got, why := PlanLayers(tc.free, tc.m, tc.ctx, tc.slots)
		if got != tc.want || why == "" {
			t.Errorf("%s: PlanLayers = %d (%s), want %d", tc.name, got, why, tc.want)
		}
	}
}

func withScratch(m ModelShape, largest uint64) ModelShape {
	m.SlotScratch = PromptScratch(largest)
	return m
}

func TestPromptCuBLAS(t *testing.T) {
	for _, tc := range []struct {
		env  string // "-": unset
		cc   int
		want bool
	}{
		{"-", 90, true}, {"-", 89, false}, {"-", 86, false}, {"-", 100, false}, {"-", 0, false},
		{"0", 90, false}, {"256", 86, true}, {"x", 90, false},
	} {
		if tc.env == "-" {
			t.Setenv("GGML_CUDA_PROMPT_CUBLAS", "")
			os.Unsetenv("GGML_CUDA_PROMPT_CUBLAS")
		} else {
			t.Setenv("GGML_CUDA_PROMPT_CUBLAS", tc.env)
		}
		if got := PromptCuBLAS(tc.cc); got != tc.want {
			t.Errorf("GGML_CUDA_PROMPT_CUBLAS=%s, cc %d: PromptCuBLAS = %v, want %v", tc.env, tc.cc, got, tc.want)
		}
	}
}

func TestThrottleNames(t *testing.T) {
	got := throttleNames(1 | 64)
	if strings.Join(got, ",") != "gpu_idle,hw_thermal" {
		t.Fatalf("throttleNames = %v", got)
	}
	if len(throttleNames(0)) != 0 {
		t.Fatal("no bits must give no names")
	}
}
