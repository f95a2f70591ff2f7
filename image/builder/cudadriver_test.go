package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckCUDADriver(t *testing.T) {
	dir := t.TempDir()
	rt := func(soname, real string) string {
		if err := os.WriteFile(filepath.Join(dir, real), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, soname)
		if soname != real {
			if err := os.Symlink(real, link); err != nil {
				t.Fatal(err)
			}
		}
		return link
	}
	cuda13 := rt("libcudart.so.13", "libcudart.so.13.0.96")
	cuda12 := rt("libcudart.so.12", "libcudart.so.12.8.90")
	other := rt("libcublas.so.13", "libcublas.so.13.0.2")
	for _, tc := range []struct {
		name   string
		libs   []string
		driver string
		want   string // "" = no error
	}{
		{"CUDA 13 on 580", []string{other, cuda13}, "580.159.04", ""},
		{"CUDA 13 on 575", []string{other, cuda13}, "575.57.08", "CUDA 13.0.96, which needs an NVIDIA driver 580 or newer, but libcuda.so.1 is 575.57.08"},
		{"CUDA 13 on Debian's 535", []string{cuda13}, "535.261.03", "needs an NVIDIA driver 580"},
		{"CUDA 12 on 535", []string{cuda12}, "535.261.03", ""},
		{"CUDA 12 on 525.60.13", []string{cuda12}, "525.60.13", ""},
		{"CUDA 12 on 525.60.11", []string{cuda12}, "525.60.11", "needs an NVIDIA driver 525.60.13"},
		{"driver release unknown", []string{cuda13}, "", ""},
		{"no CUDA runtime", []string{other}, "470.1", ""},
		{"CUDA 99, floor unknown", []string{rt("libcudart.so.99", "libcudart.so.99")}, "470.1", ""},
	} {
		err := checkCUDADriver(tc.libs, tc.driver)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"575.1.2", "580", true}, {"580", "580", false}, {"580.0.0", "580", false},
		{"580.65", "580.159", true}, {"1000.1", "580", false}, {"525.60.11", "525.60.13", true},
	} {
		if got := older(tc.a, tc.b); got != tc.want {
			t.Errorf("older(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}
