package scan

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestFDsPerfAndBPF(t *testing.T) {
	requireRoot(t)
	attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Size: uint32(unsafe.Sizeof(unix.PerfEventAttr{})), Bits: unix.PerfBitDisabled}
	perf, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOENT) {
		t.Skipf("kernel without perf events: %v", err)
	}
	if err != nil {
		t.Fatalf("perf_event_open: %v", err)
	}
	defer unix.Close(perf)

	// A one-entry array map: the smallest BPF object.
	mapAttr := struct{ typ, keySize, valueSize, maxEntries, flags uint32 }{unix.BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0}
	r, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&mapAttr)), unsafe.Sizeof(mapAttr))
	if errno == unix.ENOSYS {
		t.Skip("kernel without bpf")
	}
	if errno != 0 {
		t.Fatalf("bpf map create: %v", errno)
	}
	defer unix.Close(int(r))

	got, err := FDs{}.Scan(newEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	self := fmt.Sprintf("pid %d (", os.Getpid())
	for _, kind := range []string{"holds a perf file descriptor (anon_inode:[perf_event])", "holds a bpf file descriptor (anon_inode:bpf-map)"} {
		if len(matching(got, self, kind)) != 1 {
			t.Errorf("own %q not found: %v", kind, got)
		}
	}

	unix.Close(perf)
	got, err = FDs{}.Scan(newEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if f := matching(got, self, "perf"); len(f) != 0 {
		t.Errorf("closed perf fd still reported: %v", f)
	}
}

// A descriptor on another process's memory is found in whoever holds it.
func TestFDsProcMem(t *testing.T) {
	requireRoot(t)
	victim := startSleep(t)
	path := fmt.Sprintf("/proc/%d/mem", victim.Process.Pid)
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	got, err := FDs{}.Scan(newEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(matching(got, fmt.Sprintf("pid %d (", os.Getpid()), "holds a memory file descriptor ("+path+")")) != 1 {
		t.Fatalf("open %s not found: %v", path, got)
	}
}

func TestFDKind(t *testing.T) {
	tests := map[string]string{
		"anon_inode:[perf_event]": "perf",
		"anon_inode:bpf-map":      "bpf",
		"anon_inode:bpf-prog":     "bpf",
		"anon_inode:bpf_link":     "bpf",
		"anon_inode:[bpf_iter]":   "bpf",
		"/dev/nvidia0":            "nvidia",
		"/dev/nvidiactl":          "nvidia",
		"/dev/nvidia-uvm":         "nvidia",
		"anon_inode:[eventfd]":    "",
		"socket:[1234]":           "",
		"/dev/null":               "",
		"/tmp/nvidia":             "",
		"/dev/mem":                "memory",
		"/dev/kmem":               "memory",
		"/proc/kcore":             "memory",
		"/proc/123/mem":           "memory",
		"/proc/123/task/124/mem":  "memory",
		"/proc/123/maps":          "",
		"/proc/self/mem":          "",
		"/proc/123/mem/x":         "",
		"/tmp/proc/123/mem":       "",
	}
	for target, want := range tests {
		if got := FDKind(target); got != want {
			t.Errorf("FDKind(%q) = %q, want %q", target, got, want)
		}
	}
}
