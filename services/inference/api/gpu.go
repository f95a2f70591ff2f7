package api

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kwyre/kwyre/services/inference/gpu"
)

// gpuState is the GPUs' current state as the driver reports it, or no GPU
// with the reason.
func (s *Server) gpuState() gpu.System {
	if s.cfg.GPUState == nil {
		return gpu.System{Devices: []gpu.Device{}, Unavailable: "GPU not probed"}
	}
	return s.cfg.GPUState()
}

// inference says what the engine runs on: "none" until it is loaded and
// when it runs on the CPU.
func (s *Server) inference() EngineInfo {
	if e := s.currentEngine(); e != nil && e.info.GPU != "" {
		return e.info
	}
	return EngineInfo{GPU: "none"}
}

// healthDevices is the GPUs' state for /health, which answers without a
// key: the same metadata as /audit less each GPU's serial identity.
func healthDevices(sys gpu.System) []gpu.Device {
	out := slices.Clone(sys.Devices)
	for i := range out {
		out[i].UUID = ""
	}
	if out == nil {
		out = []gpu.Device{}
	}
	return out
}

// gpuAudit is /audit's "gpu" object: what the engine runs on and the
// driver's view of every GPU, read when asked.
type gpuAudit struct {
	Inference   string `json:"inference"` // "none", or the GPU, backend and layers
	LayersOnGPU int    `json:"layers_on_gpu"`
	gpu.System
}

// promLabel escapes a label value for the Prometheus text format.
var promLabel = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// throttleReasons is every reason kwyre_gpu_throttle reports, so that a
// reason that clears reads 0 instead of vanishing.
var throttleReasons = gpu.ThrottleReasonNames()

// appendGPUMetrics appends the GPUs' gauges in the Prometheus text format.
func appendGPUMetrics(b []byte, sys gpu.System, eng EngineInfo) []byte {
	b = fmt.Appendf(b, "# HELP kwyre_gpu_devices NVIDIA GPUs the driver reports (0 without a driver).\n# TYPE kwyre_gpu_devices gauge\nkwyre_gpu_devices %d\n", len(sys.Devices))
	b = fmt.Appendf(b, "# HELP kwyre_gpu_layers Model layers the engine runs on the GPU (0 on the CPU).\n# TYPE kwyre_gpu_layers gauge\nkwyre_gpu_layers %d\n", eng.LayersOnGPU)
	if len(sys.Devices) == 0 {
		return b
	}
	b = append(b, "# HELP kwyre_gpu_info A GPU's name and the driver's versions (value 1).\n# TYPE kwyre_gpu_info gauge\n"...)
	for _, d := range sys.Devices {
		b = fmt.Appendf(b, "kwyre_gpu_info{gpu=\"%d\",name=\"%s\",driver=\"%s\",cuda=\"%s\"} 1\n",
			d.Index, promLabel.Replace(d.Name), promLabel.Replace(sys.Driver), promLabel.Replace(sys.CUDA))
	}
	gauges := []struct {
		name, help string
		v          func(gpu.Device) uint64
	}{
		{"kwyre_gpu_memory_total_bytes", "The GPU's memory.", func(d gpu.Device) uint64 { return d.MemoryTotal }},
		{"kwyre_gpu_memory_used_bytes", "GPU memory in use, by every process.", func(d gpu.Device) uint64 { return d.MemoryUsed }},
		{"kwyre_gpu_temperature_celsius", "The GPU's core temperature.", func(d gpu.Device) uint64 { return uint64(d.TemperatureC) }},
		{"kwyre_gpu_utilization_percent", "Share of the driver's last sample period in which a kernel ran.", func(d gpu.Device) uint64 { return uint64(d.UtilizationGPU) }},
		{"kwyre_gpu_memory_utilization_percent", "Share of the driver's last sample period in which memory was read or written.", func(d gpu.Device) uint64 { return uint64(d.UtilizationMem) }},
	}
	for _, g := range gauges {
		b = fmt.Appendf(b, "# HELP %s %s\n# TYPE %s gauge\n", g.name, g.help, g.name)
		for _, d := range sys.Devices {
			b = fmt.Appendf(b, "%s{gpu=\"%d\"} %d\n", g.name, d.Index, g.v(d))
		}
	}
	b = append(b, "# HELP kwyre_gpu_throttle Whether a reason holds the GPU's clocks down now (1) or not (0).\n# TYPE kwyre_gpu_throttle gauge\n"...)
	for _, d := range sys.Devices {
		for _, r := range throttleReasons {
			v := 0
			if slices.Contains(d.ThrottleReasons, r) {
				v = 1
			}
			b = fmt.Appendf(b, "kwyre_gpu_throttle{gpu=\"%d\",reason=\"%s\"} %d\n", d.Index, r, v)
		}
	}
	return b
}
