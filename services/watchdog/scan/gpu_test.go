package scan

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
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

// TestGPUForeignProcesses runs the scanner against go-nvml's simulated DGX
// A100 (no GPU or driver runs here): a compute or MPS context of any process
// but the inference service is a finding; lists the driver does not support
// are passed over; a failing list is an error, not a clean scan.
func TestGPUForeignProcesses(t *testing.T) {
	const inference, intruder, other = 4242, 31337, 555
	drv := dgxa100.New()
	drv.DeviceGetCountFunc = func() (int, nvml.Return) { return 2, nvml.SUCCESS }
	procs := func(pids ...uint32) func() ([]nvml.ProcessInfo, nvml.Return) {
		return func() ([]nvml.ProcessInfo, nvml.Return) {
			out := make([]nvml.ProcessInfo, len(pids))
			for i, p := range pids {
				out[i] = nvml.ProcessInfo{Pid: p, UsedGpuMemory: 1 << 30}
			}
			return out, nvml.SUCCESS
		}
	}
	unsupported := func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.ERROR_NOT_SUPPORTED }
	d0, d1 := drv.Devices[0].(*dgxa100.Device), drv.Devices[1].(*dgxa100.Device)
	d0.GetComputeRunningProcessesFunc = procs(inference)
	d0.GetGraphicsRunningProcessesFunc = unsupported
	d0.GetMPSComputeRunningProcessesFunc = procs()
	d1.GetComputeRunningProcessesFunc = procs(inference, intruder)
	d1.GetGraphicsRunningProcessesFunc = unsupported
	d1.GetMPSComputeRunningProcessesFunc = procs(other)

	g := &GPU{lib: drv}
	defer g.Close()
	env := &Env{InferencePID: inference, ProcRoot: t.TempDir()}
	got, err := g.Scan(env)
	if err != nil {
		t.Fatal(err)
	}
	var whats []string
	for _, f := range got {
		whats = append(whats, f.Key+": "+f.What)
	}
	want := []string{
		"1 compute 31337: pid 31337 holds a compute context on GPU 1",
		"1 mps 555: pid 555 holds a mps context on GPU 1",
	}
	if strings.Join(whats, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(whats, "\n"), strings.Join(want, "\n"))
	}

	// Only the inference service left: a clean scan, on the same session.
	d1.GetComputeRunningProcessesFunc = procs(inference)
	d1.GetMPSComputeRunningProcessesFunc = procs()
	if got, err := g.Scan(env); err != nil || len(got) != 0 {
		t.Fatalf("clean GPU: %v, %v", got, err)
	}

	// A list the driver fails to give is a blind spot.
	d1.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.ERROR_GPU_IS_LOST }
	if _, err := g.Scan(env); err == nil || !strings.Contains(err.Error(), "device 1 compute processes") {
		t.Fatalf("GPU lost: err = %v", err)
	}
}
