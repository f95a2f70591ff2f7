package scan

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A real GPU compute process (PyTorch holding a CUDA context) is found by the
// GPU scanner and, through its /dev/nvidia* descriptors, by the fd scanner;
// as the inference service it is allowed. Skipped without an NVIDIA driver
// or without PyTorch built for CUDA.
func TestGPUComputeProcess(t *testing.T) {
	g := NewGPU("")
	defer g.Close()
	if _, err := g.Scan(&Env{}); err != nil {
		if reason, ok := Skipped(err); ok {
			t.Skip(reason)
		}
		t.Fatal(err)
	}
	py := exec.Command("python3", "-c", `import sys, torch
x = torch.ones(1024, device="cuda")
torch.cuda.synchronize()
print("ready", flush=True)
sys.stdin.read()`)
	stdin, _ := py.StdinPipe()
	out, _ := py.StdoutPipe()
	if err := py.Start(); err != nil {
		t.Skipf("python3: %v", err)
	}
	t.Cleanup(func() { stdin.Close(); py.Process.Kill(); py.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Skipf("no PyTorch with CUDA here (%q)", line)
	}
	pid := py.Process.Pid
	who := fmt.Sprintf("pid %d (", pid)

	var got []Finding
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var err error
		if got, err = g.Scan(newEnv(t)); err != nil {
			t.Fatal(err)
		}
		if len(matching(got, who, "holds a compute context on GPU")) > 0 {
			break
		}
	}
	if len(matching(got, who, "holds a compute context on GPU")) == 0 {
		t.Fatalf("compute process %d not found: %v", pid, got)
	}
	t.Logf("found: %v", matching(got, who))
	fds, err := FDs{}.Scan(newEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(matching(fds, who, "holds a nvidia file descriptor")) != 1 {
		t.Errorf("nvidia fds of %d not found: %v", pid, fds)
	}

	env := newEnv(t)
	env.InferencePID = pid
	if got, err = g.Scan(env); err != nil || len(matching(got, who)) != 0 {
		t.Errorf("the inference service's own context reported: %v, %v", got, err)
	}
	if fds, err = (FDs{}).Scan(env); err != nil || len(matching(fds, who)) != 0 {
		t.Errorf("the inference service's own nvidia fds reported: %v, %v", fds, err)
	}
}
