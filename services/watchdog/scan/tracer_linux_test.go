package scan

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "120")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// waitTraced waits until the kernel shows pid traced.
func waitTraced(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n, err := TracerPID(fmt.Sprintf("/proc/%d/status", pid)); err == nil && n != 0 {
			return
		}
	}
	t.Fatalf("pid %d never traced", pid)
}

func TestTracerStrace(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace not installed")
	}
	victim := startSleep(t)
	bystander := startSleep(t)
	st := exec.Command("strace", "-p", strconv.Itoa(victim.Process.Pid), "-o", os.DevNull)
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Process.Kill(); st.Wait() })
	waitTraced(t, victim.Process.Pid)

	env := newEnv(t)
	env.Protected = map[int]string{victim.Process.Pid: "inference", bystander.Process.Pid: "console"}
	got, err := Tracer{}.Scan(env)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("inference (pid %d, thread %d) is traced by pid %d (strace)",
		victim.Process.Pid, victim.Process.Pid, st.Process.Pid)
	if len(got) != 1 || got[0].What != want {
		t.Fatalf("got %v, want one finding %q", got, want)
	}

	// strace itself is a known tool.
	procs, err := Processes{}.Scan(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(matching(procs, "inspection tool strace", fmt.Sprintf("pid %d ", st.Process.Pid))) != 1 {
		t.Errorf("strace pid %d not found by the process scanner: %v", st.Process.Pid, procs)
	}
}

// PTRACE_SEIZE from one locked thread: the kernel reports the tracing thread,
// which the finding names by its process.
func TestTracerSeizeFromThread(t *testing.T) {
	requireRoot(t)
	victim := startSleep(t)
	pid := victim.Process.Pid
	attached := make(chan error)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits, detaching
		attached <- unix.PtraceSeize(pid)
		<-done
	}()
	if err := <-attached; err != nil {
		t.Fatalf("seize pid %d: %v", pid, err)
	}
	defer close(done)
	waitTraced(t, pid)

	env := newEnv(t)
	env.Protected = map[int]string{pid: "inference"}
	got, err := Tracer{}.Scan(env)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if len(got) != 1 || len(matching(got, fmt.Sprintf("traced by pid %d (%s", os.Getpid(), filepath.Base(exe)))) != 1 {
		t.Fatalf("got %v, want the test process %d named as tracer", got, os.Getpid())
	}
}

func TestTracerUntraced(t *testing.T) {
	victim := startSleep(t)
	env := newEnv(t)
	env.Protected = map[int]string{victim.Process.Pid: "inference", 999999999: "gone"}
	got, err := Tracer{}.Scan(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("untraced processes reported: %v", got)
	}
}

func TestTracerPIDParse(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		status  string
		want    int
		wantErr bool
	}{
		{"Name:\tsleep\nTracerPid:\t0\nUid:\t0\n", 0, false},
		{"Name:\tsleep\nTracerPid:\t4242\n", 4242, false},
		{"Name:\tsleep\n", 0, true},
		{"TracerPid:\tx\n", 0, true},
	}
	for i, tc := range tests {
		p := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(p, []byte(tc.status), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := TracerPID(p)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%q: got %d, %v; want %d, error %v", tc.status, got, err, tc.want, tc.wantErr)
		}
	}
}
