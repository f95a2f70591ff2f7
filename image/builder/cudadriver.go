package builder

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// cudaDriverFloor is the oldest NVIDIA driver each CUDA major release runs
// on (NVIDIA's minor version compatibility: any 12.x runtime on a 525.60.13
// driver, and so on). An older driver refuses the runtime, and the service
// would run on the CPU.
var cudaDriverFloor = map[int]string{11: "450.80.02", 12: "525.60.13", 13: "580"}

// checkCUDADriver fails when the CUDA runtime among libs (libcudart.so.N,
// its real file's name giving the full version) needs a newer driver than
// driver, libcuda's release. It says nothing when either is unknown.
func checkCUDADriver(libs []string, driver string) error {
	if driver == "" {
		return nil
	}
	for _, p := range libs {
		v, ok := strings.CutPrefix(filepath.Base(p), "libcudart.so.")
		if !ok {
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if rv, ok := strings.CutPrefix(filepath.Base(real), "libcudart.so."); ok {
				v = rv
			}
		}
		major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
		if err != nil {
			return fmt.Errorf("CUDA runtime %s: no major version in its name", p)
		}
		floor, ok := cudaDriverFloor[major]
		if !ok {
			continue
		}
		if older(driver, floor) {
			return fmt.Errorf("CUDA runtime %s is CUDA %s, which needs an NVIDIA driver %s or newer, but libcuda.so.1 is %s: "+
				"the inference service would fall back to the CPU (build the backend with an older CUDA toolkit, or install a newer driver)",
				filepath.Base(p), v, floor, driver)
		}
	}
	return nil
}

// older reports whether dotted version a is below b (580.65 < 580.159;
// a missing part counts as 0).
func older(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
