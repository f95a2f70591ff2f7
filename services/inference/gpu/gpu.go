// Package gpu reports the machine's NVIDIA GPUs through NVML: what the inference service
// shows in /health, /audit and /metrics, and what -gpu-layers auto sizes the offload from.
// Everything here is metadata. Without a driver every call answers "no GPU" instead of failing.
package gpu

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Device is one GPU's static facts and current state.
type Device struct {
	Index           int      `json:"index"`
	Name            string   `json:"name"`
	UUID            string   `json:"uuid,omitempty"`
	MemoryTotal     uint64   `json:"memory_total_bytes"`
	MemoryFree      uint64   `json:"memory_free_bytes"`
	MemoryUsed      uint64   `json:"memory_used_bytes"`
	TemperatureC    uint32   `json:"temperature_c"`
	UtilizationGPU  uint32   `json:"utilization_gpu_percent"`
	UtilizationMem  uint32   `json:"utilization_memory_percent"`
	ThrottleReasons []string `json:"throttle_reasons"`
	// Peak memory bandwidth from the memory clock and bus width, bytes/s (0 if unknown).
	MemoryBandwidth float64 `json:"memory_bandwidth_bytes_per_s,omitempty"`
	// CUDA compute capability, major*10+minor (90: Hopper); 0 if unknown.
	ComputeCapability int `json:"compute_capability,omitempty"`
}

// Process is a compute process NVML sees on a GPU.
type Process struct {
	GPU        int    `json:"gpu"`
	PID        uint32 `json:"pid"`
	UsedMemory uint64 `json:"used_memory_bytes"`
}

// System is the driver's view: empty Devices and a Reason when there is no usable GPU.
type System struct {
	Driver      string   `json:"driver_version,omitempty"`
	CUDA        string   `json:"cuda_version,omitempty"`
	Devices     []Device `json:"devices"`
	Unavailable string   `json:"unavailable,omitempty"`
}

// Summary is the one-line answer for "gpu:" fields: the first GPU's name, or "none".
func (s System) Summary() string {
	if len(s.Devices) == 0 {
		return "none"
	}
	if len(s.Devices) == 1 {
		return s.Devices[0].Name
	}
	return fmt.Sprintf("%s (x%d)", s.Devices[0].Name, len(s.Devices))
}

// ErrNoDriver means NVML could not be loaded or initialised: the machine runs on CPU.
var ErrNoDriver = errors.New("no NVIDIA driver")

// Probe owns one NVML session. Open it once at start; Close at exit.
type Probe struct {
	mu  sync.Mutex
	lib nvml.Interface
	ok  bool
	err error

	last   System // the latest snapshot, for Recent
	lastAt time.Time
}

// Open initialises NVML. libPath may name libnvidia-ml.so.1 explicitly ("" = the loader's
// search path). A machine without the driver gets a Probe whose answers say so.
func Open(libPath string) *Probe {
	var opts []nvml.LibraryOption
	if libPath != "" {
		opts = append(opts, nvml.WithLibraryPath(libPath))
	}
	return NewProbe(nvml.New(opts...))
}

// NewProbe initialises lib: the driver's library (Open), or another
// implementation of NVML's interface.
func NewProbe(lib nvml.Interface) *Probe {
	p := &Probe{lib: lib}
	if ret := safeInit(p.lib); ret != nvml.SUCCESS {
		p.err = fmt.Errorf("%w: nvml init: %s", ErrNoDriver, nvml.ErrorString(ret))
		return p
	}
	p.ok = true
	return p
}

// safeInit guards against NVML builds that panic when the library is missing.
func safeInit(lib nvml.Interface) (ret nvml.Return) {
	defer func() {
		if recover() != nil {
			ret = nvml.ERROR_LIBRARY_NOT_FOUND
		}
	}()
	return lib.Init()
}

// Err is why no GPU is usable, or nil.
func (p *Probe) Err() error { return p.err }

// Close ends the NVML session.
func (p *Probe) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ok {
		p.lib.Shutdown()
		p.ok = false
		p.err = errors.New("NVML session closed")
	}
}

// Snapshot reads every GPU's current state.
func (p *Probe) Snapshot() System {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last, p.lastAt = p.snapshot(), time.Now()
	return p.last
}

// Recent is a snapshot at most maxAge old: it reads the driver again only
// when the last one is older. /health needs no key, so polling it cannot
// make the service query the driver more often than that.
func (p *Probe) Recent(maxAge time.Duration) System {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastAt.IsZero() || time.Since(p.lastAt) > maxAge {
		p.last, p.lastAt = p.snapshot(), time.Now()
	}
	return p.last
}

func (p *Probe) snapshot() System {
	if !p.ok {
		reason := "no NVIDIA driver"
		if p.err != nil {
			reason = p.err.Error()
		}
		return System{Devices: []Device{}, Unavailable: reason}
	}
	var s System
	if v, ret := p.lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		s.Driver = v
	}
	if v, ret := p.lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		s.CUDA = fmt.Sprintf("%d.%d", v/1000, (v%1000)/10)
	}
	n, ret := p.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		s.Unavailable = "device count: " + nvml.ErrorString(ret)
		s.Devices = []Device{}
		return s
	}
	s.Devices = make([]Device, 0, n)
	for i := 0; i < n; i++ {
		h, ret := p.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			continue
		}
		s.Devices = append(s.Devices, readDevice(i, h))
	}
	if len(s.Devices) == 0 {
		s.Unavailable = "no NVIDIA GPU"
	}
	return s
}

func readDevice(i int, h nvml.Device) Device {
	d := Device{Index: i, ThrottleReasons: []string{}}
	if v, ret := h.GetName(); ret == nvml.SUCCESS {
		d.Name = v
	}
	if major, minor, ret := h.GetCudaComputeCapability(); ret == nvml.SUCCESS {
		d.ComputeCapability = 10*major + minor
	}
	if v, ret := h.GetUUID(); ret == nvml.SUCCESS {
		d.UUID = v
	}
	if m, ret := h.GetMemoryInfo(); ret == nvml.SUCCESS {
		d.MemoryTotal, d.MemoryFree, d.MemoryUsed = m.Total, m.Free, m.Used
	}
	if v, ret := h.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
		d.TemperatureC = v
	}
	if u, ret := h.GetUtilizationRates(); ret == nvml.SUCCESS {
		d.UtilizationGPU, d.UtilizationMem = u.Gpu, u.Memory
	}
	if r, ret := h.GetCurrentClocksEventReasons(); ret == nvml.SUCCESS {
		d.ThrottleReasons = throttleNames(r)
	}
	clk, r1 := h.GetMaxClockInfo(nvml.CLOCK_MEM)
	bus, r2 := h.GetMemoryBusWidth()
	if r1 == nvml.SUCCESS && r2 == nvml.SUCCESS {
		// Double data rate: two transfers per memory clock.
		d.MemoryBandwidth = 2 * float64(clk) * 1e6 * float64(bus) / 8
	}
	return d
}

var throttleBits = map[uint64]string{
	nvml.ClocksEventReasonGpuIdle:                   "gpu_idle",
	nvml.ClocksEventReasonApplicationsClocksSetting: "applications_clocks",
	nvml.ClocksEventReasonSwPowerCap:                "sw_power_cap",
	nvml.ClocksThrottleReasonHwSlowdown:             "hw_slowdown",
	nvml.ClocksEventReasonSyncBoost:                 "sync_boost",
	nvml.ClocksEventReasonSwThermalSlowdown:         "sw_thermal",
	nvml.ClocksThrottleReasonHwThermalSlowdown:      "hw_thermal",
	nvml.ClocksThrottleReasonHwPowerBrakeSlowdown:   "hw_power_brake",
	nvml.ClocksEventReasonDisplayClockSetting:       "display_clock",
}

// ThrottleReasonNames lists every name throttle_reasons may hold, sorted.
func ThrottleReasonNames() []string {
	out := make([]string, 0, len(throttleBits))
	for _, name := range throttleBits {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func throttleNames(bits uint64) []string {
	out := []string{}
	for b, name := range throttleBits {
		if bits&b != 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Processes lists the compute processes on every GPU.
func (p *Probe) Processes() ([]Process, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ok {
		return nil, p.err
	}
	n, ret := p.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvml device count: %s", nvml.ErrorString(ret))
	}
	var out []Process
	for i := 0; i < n; i++ {
		h, ret := p.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml device %d: %s", i, nvml.ErrorString(ret))
		}
		procs, ret := h.GetComputeRunningProcesses()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvml device %d processes: %s", i, nvml.ErrorString(ret))
		}
		for _, pr := range procs {
			out = append(out, Process{GPU: i, PID: pr.Pid, UsedMemory: pr.UsedGpuMemory})
		}
	}
	return out, nil
}

// String is a one-line description for the service's start-up log.
func (s System) String() string {
	if len(s.Devices) == 0 {
		return "gpu: none (" + s.Unavailable + ")"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "gpu: driver %s, CUDA %s", s.Driver, s.CUDA)
	for _, d := range s.Devices {
		fmt.Fprintf(&b, "; #%d %s, %.1f GiB total, %.1f GiB free", d.Index, d.Name,
			float64(d.MemoryTotal)/(1<<30), float64(d.MemoryFree)/(1<<30))
	}
	return b.String()
}
