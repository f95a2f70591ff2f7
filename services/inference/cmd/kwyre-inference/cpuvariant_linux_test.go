package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestMissingFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v3 := write("v3", "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 bmi1 bmi2 f16c fma movbe abm\n\nprocessor\t: 1\nflags\t\t: fpu\n")
	old := write("old", "processor\t: 0\nflags\t\t: fpu sse2 sse4_2 popcnt avx\n")
	if m := missingFlags(v3, v3Flags); len(m) != 0 {
		t.Errorf("v3 CPU: missing %v", m)
	}
	if m := missingFlags(old, v3Flags); !slices.Equal(m, []string{"avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "abm"}) {
		t.Errorf("older CPU: missing %v", m)
	}
	if m := missingFlags(filepath.Join(dir, "none"), v3Flags); len(m) != len(v3Flags) {
		t.Errorf("unreadable cpuinfo: missing %v, want all", m)
	}
}

// TestCPUBuildExec runs a baseline binary with an "x86-64-v3" build beside
// it (here a copy: what matters is which file runs) and checks which one
// the process ends up executing.
func TestCPUBuildExec(t *testing.T) {
	if m := missingFlags("/proc/cpuinfo", v3Flags); len(m) > 0 {
		t.Skipf("this CPU lacks %v", m)
	}
	data, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base := filepath.Join(dir, "kwyre-inference")
	for _, p := range []string{base, base + v3Suffix} {
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	model := filepath.Join(modelDir, "demo.gguf")
	for _, tt := range []struct {
		env  []string
		want string
	}{
		{nil, base + v3Suffix},
		{[]string{"KWYRE_CPU_BUILD=baseline"}, base},
	} {
		p := launchBin(t, base, tt.env, "-model", model)
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if exe != tt.want {
			t.Errorf("env %v: the service runs %s, want %s", tt.env, exe, tt.want)
		}
		if code, _ := p.call("GET", "/health", ""); code != 200 {
			t.Errorf("env %v: /health %d", tt.env, code)
		}
		p.signal(syscall.SIGTERM)
		p.wait(10 * time.Second)
	}
}
