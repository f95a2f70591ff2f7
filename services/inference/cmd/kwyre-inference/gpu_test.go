package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/inference/gpu"
	"github.com/kwyre/kwyre/tools/testmodel"
)

// TestGPUFallback asks for GPU layers with a broken CUDA backend in
// -backend-dir: the service says why it runs on the CPU, reports what the
// driver sees (here, without one: no GPU) in its log, /health, /audit and
// /metrics, and answers on the CPU.
func TestGPUFallback(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lib", "ollama")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 8192)
	rand.Read(junk)
	if err := os.WriteFile(filepath.Join(dir, "libggml-cuda.so"), junk, 0o755); err != nil {
		t.Fatal(err)
	}
	// What this machine's driver says, to compare with the service's answers.
	probe := gpu.Open("")
	sys := probe.Snapshot()
	probe.Close()

	probeLine := `msg="gpu probe" result="gpu: driver `
	if len(sys.Devices) == 0 {
		probeLine = `msg="gpu probe" result="gpu: none (`
	}

	p := launch(t, "-model", filepath.Join(modelDir, "demo.gguf"), "-gpu-layers", "8", "-backend-dir", dir)
	for _, want := range []string{
		probeLine,
		`msg="gpu offload" layers=8 why="set by -gpu-layers"`,
		`msg="gpu fallback: running on the CPU" why="libggml-cuda.so in ` + dir + ` did not load`,
		"backend=CPU layers_on_gpu=0",
	} {
		// stderr arrives through its own pipe: allow it to catch up.
		for i := 0; !strings.Contains(p.out.String(), want); i++ {
			if i == 50 {
				t.Fatalf("log lacks %q:\n%s", want, p.out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	code, b := p.call("GET", "/health", "")
	var h struct {
		Status     string
		GPU        string
		GPUDevices []gpu.Device `json:"gpu_devices"`
	}
	if code != 200 || json.Unmarshal([]byte(b), &h) != nil || h.Status != "ready" || h.GPU != "none" || len(h.GPUDevices) != len(sys.Devices) {
		t.Fatalf("health: %d %s", code, b)
	}
	code, b = p.call("GET", "/audit", "")
	var a struct {
		GPU struct {
			Inference   string
			Layers      int `json:"layers_on_gpu"`
			Devices     []gpu.Device
			Unavailable string
		}
	}
	if code != 200 || json.Unmarshal([]byte(b), &a) != nil || a.GPU.Inference != "none" || a.GPU.Layers != 0 ||
		len(a.GPU.Devices) != len(sys.Devices) || a.GPU.Unavailable != sys.Unavailable {
		t.Fatalf("audit: %d %s", code, b)
	}
	code, b = p.call("GET", "/metrics", "")
	if code != 200 || !strings.Contains(b, "kwyre_gpu_devices "+strconv.Itoa(len(sys.Devices))+"\n") || !strings.Contains(b, "kwyre_gpu_layers 0\n") {
		t.Fatalf("metrics: %d %s", code, b)
	}
	if code, b := p.call("POST", "/v1/chat/completions", chatBody("", "hello", false)); code != 200 || !strings.Contains(b, testmodel.DemoReply) {
		t.Fatalf("chat on the CPU: %d %s", code, b)
	}
}
