package scan

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// GPU finds processes holding a context on an NVIDIA GPU other than the
// inference service, through NVML. Without the driver (no libnvidia-ml, or the
// kernel module not loaded) or without a device it reports itself skipped.
type GPU struct {
	lib   nvml.Interface
	ready bool
}

// NewGPU uses libPath for libnvidia-ml ("" = the loader's search path).
func NewGPU(libPath string) *GPU {
	var opts []nvml.LibraryOption
	if libPath != "" {
		opts = append(opts, nvml.WithLibraryPath(libPath))
	}
	return &GPU{lib: nvml.New(opts...)}
}

func (*GPU) Name() string { return "gpu" }

// Close releases NVML.
func (g *GPU) Close() {
	if g.ready {
		g.lib.Shutdown()
		g.ready = false
	}
}

func (g *GPU) Scan(env *Env) ([]Finding, error) {
	if !g.ready {
		switch ret := g.lib.Init(); ret {
		case nvml.SUCCESS:
			g.ready = true
		case nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED:
			return nil, &SkipError{Reason: "no NVIDIA driver (" + nvmlError(ret) + ")"}
		case nvml.ERROR_NO_PERMISSION:
			// A driver the watchdog may not query is a blind spot, not an
			// absent GPU: /dev/nvidia* must be open to the watchdog's uid.
			return nil, fmt.Errorf("nvml init: %s: cannot open /dev/nvidiactl", nvmlError(ret))
		default:
			return nil, fmt.Errorf("nvml init: %s", nvmlError(ret))
		}
	}
	n, ret := g.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvml device count: %s", nvmlError(ret))
	}
	if n == 0 {
		return nil, &SkipError{Reason: "no NVIDIA GPU"}
	}
	var out []Finding
	for i := range n {
		dev, ret := g.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return out, fmt.Errorf("nvml device %d: %s", i, nvmlError(ret))
		}
		lists := []struct {
			kind string
			get  func() ([]nvml.ProcessInfo, nvml.Return)
		}{
			{"compute", dev.GetComputeRunningProcesses},
			{"graphics", dev.GetGraphicsRunningProcesses},
			{"mps", dev.GetMPSComputeRunningProcesses},
		}
		for _, l := range lists {
			procs, ret := l.get()
			if ret == nvml.ERROR_NOT_SUPPORTED || ret == nvml.ERROR_NOT_FOUND {
				continue
			}
			if ret != nvml.SUCCESS {
				return out, fmt.Errorf("nvml device %d %s processes: %s", i, l.kind, nvmlError(ret))
			}
			for _, p := range procs {
				pid := int(p.Pid)
				if pid == env.InferencePID && pid != 0 {
					continue
				}
				out = append(out, finding("gpu", fmt.Sprintf("%d %s %d", i, l.kind, pid),
					"%s holds a %s context on GPU %d", env.Describe(pid), l.kind, i))
			}
		}
	}
	return out, nil
}

func nvmlError(ret nvml.Return) string {
	// ErrorString needs the library; without it say what the code means.
	if ret == nvml.ERROR_LIBRARY_NOT_FOUND {
		return "libnvidia-ml not found"
	}
	return ret.Error()
}
