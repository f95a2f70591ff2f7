package api

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kwyre/kwyre/services/inference/gpu"
)

// h100 is a driver's answer for one GPU, as gpu.Probe reads it; the name
// carries a quote and a backslash to test the metrics' escaping.
var h100 = gpu.System{
	Driver: "580.159.04", CUDA: "13.0",
	Devices: []gpu.Device{{
		Index: 0, Name: `NVIDIA "H100" 80GB\HBM3`, UUID: "GPU-5f1d2c3b-0000-1111-2222-333344445555",
		MemoryTotal: 85520809984, MemoryUsed: 9876543210, MemoryFree: 75644266774,
		TemperatureC: 47, UtilizationGPU: 93, UtilizationMem: 38,
		ThrottleReasons: []string{"sw_power_cap"}, ComputeCapability: 90,
	}},
}

func TestGPUReports(t *testing.T) {
	var reads atomic.Int32
	_, url, key := startServer(t, Config{ModelName: "m", GPU: h100.Summary(), GPUState: func() gpu.System {
		reads.Add(1)
		return h100
	}})

	resp, body := do(t, "GET", url+"/health", "", "", "")
	var h struct {
		GPU        string
		GPUDevices []map[string]any `json:"gpu_devices"`
	}
	if err := json.Unmarshal(body, &h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("health %d %s", resp.StatusCode, body)
	}
	if h.GPU != h100.Devices[0].Name || len(h.GPUDevices) != 1 {
		t.Fatalf("health = %s", body)
	}
	d := h.GPUDevices[0]
	if d["temperature_c"] != 47.0 || d["memory_used_bytes"] != 9876543210.0 || d["utilization_gpu_percent"] != 93.0 {
		t.Fatalf("health's device = %v", d)
	}
	if _, ok := d["uuid"]; ok || strings.Contains(string(body), "GPU-5f1d") {
		t.Fatalf("/health, which needs no key, names the GPU's UUID: %s", body)
	}

	_, body = do(t, "GET", url+"/audit", key, "", "")
	var a struct {
		GPU struct {
			Inference   string
			LayersOnGPU *int   `json:"layers_on_gpu"`
			Driver      string `json:"driver_version"`
			CUDA        string `json:"cuda_version"`
			Devices     []gpu.Device
		}
	}
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	g := a.GPU
	if g.Inference != "none" || g.LayersOnGPU == nil || *g.LayersOnGPU != 0 || g.Driver != "580.159.04" || g.CUDA != "13.0" ||
		len(g.Devices) != 1 || g.Devices[0].UUID != h100.Devices[0].UUID || g.Devices[0].ThrottleReasons[0] != "sw_power_cap" {
		t.Fatalf("audit's gpu = %+v (%s)", g, body)
	}

	_, body = do(t, "GET", url+"/metrics", key, "", "")
	m := string(body)
	for _, want := range []string{
		"kwyre_gpu_devices 1\n",
		"kwyre_gpu_layers 0\n",
		`kwyre_gpu_info{gpu="0",name="NVIDIA \"H100\" 80GB\\HBM3",driver="580.159.04",cuda="13.0"} 1` + "\n",
		`kwyre_gpu_memory_used_bytes{gpu="0"} 9876543210` + "\n",
		`kwyre_gpu_memory_total_bytes{gpu="0"} 85520809984` + "\n",
		`kwyre_gpu_temperature_celsius{gpu="0"} 47` + "\n",
		`kwyre_gpu_utilization_percent{gpu="0"} 93` + "\n",
		`kwyre_gpu_memory_utilization_percent{gpu="0"} 38` + "\n",
		`kwyre_gpu_throttle{gpu="0",reason="sw_power_cap"} 1` + "\n",
		`kwyre_gpu_throttle{gpu="0",reason="hw_thermal"} 0` + "\n",
		"kwyre_active_sessions 0\n", // the service's own counters come first
	} {
		if !strings.Contains(m, want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, m)
		}
	}
	if n := strings.Count(m, "kwyre_gpu_throttle{"); n != len(gpu.ThrottleReasonNames()) {
		t.Fatalf("%d throttle lines, want one per reason (%d)", n, len(gpu.ThrottleReasonNames()))
	}
	if reads.Load() != 3 {
		t.Fatalf("the driver's state was read %d times for three answers", reads.Load())
	}
}

func TestGPUReportsWithoutGPU(t *testing.T) {
	none := gpu.System{Devices: []gpu.Device{}, Unavailable: "no NVIDIA driver: nvml init: ERROR_LIBRARY_NOT_FOUND"}
	for _, tc := range []struct {
		name   string
		state  func() gpu.System
		reason string
	}{
		{"no driver", func() gpu.System { return none }, "no NVIDIA driver"},
		{"not probed", nil, "GPU not probed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url, key := startServer(t, Config{ModelName: "m", GPU: "none", GPUState: tc.state})
			_, body := do(t, "GET", url+"/health", "", "", "")
			if !strings.Contains(string(body), `"gpu":"none","gpu_devices":[]`) {
				t.Fatalf("health = %s", body)
			}
			_, body = do(t, "GET", url+"/audit", key, "", "")
			var a struct{ GPU map[string]any }
			if err := json.Unmarshal(body, &a); err != nil {
				t.Fatal(err)
			}
			if a.GPU["inference"] != "none" || !strings.HasPrefix(a.GPU["unavailable"].(string), tc.reason) {
				t.Fatalf("audit's gpu = %v", a.GPU)
			}
			_, body = do(t, "GET", url+"/metrics", key, "", "")
			if m := string(body); !strings.Contains(m, "kwyre_gpu_devices 0\n") || strings.Contains(m, "kwyre_gpu_info") {
				t.Fatalf("/metrics without a GPU:\n%s", m)
			}
		})
	}
}
