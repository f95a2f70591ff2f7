package scan

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A program named like a debugger is found, whatever its path.
func TestProcessesTool(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	gdb := filepath.Join(t.TempDir(), "gdb")
	copyFile(t, sleep, gdb)
	cmd := exec.Command(gdb, "120")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	plain := startSleep(t)

	got, err := Processes{}.Scan(newEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(matching(got, fmt.Sprintf("inspection tool gdb running as pid %d (%s)", cmd.Process.Pid, gdb))) != 1 {
		t.Errorf("gdb pid %d not found: %v", cmd.Process.Pid, got)
	}
	if f := matching(got, fmt.Sprintf("pid %d ", plain.Process.Pid)); len(f) != 0 {
		t.Errorf("plain sleep reported outside appliance mode: %v", f)
	}
}

// Names an intruder chooses reach the console only as printable text.
func TestProcessesNamesArePrintable(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	dir := filepath.Join(t.TempDir(), "evil\n\x1b[2Jdir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, sleep, filepath.Join(dir, "gdb"))
	cmd := exec.Command(filepath.Join(dir, "gdb"), "120")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	got, err := Processes{}.Scan(newEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	f := matching(got, fmt.Sprintf("running as pid %d (", cmd.Process.Pid))
	if len(f) != 1 || !strings.Contains(f[0].What, "evil??[2Jdir/gdb") {
		t.Fatalf("got %+v", f)
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text 127.0.0.1:8000": "plain text 127.0.0.1:8000",
		"a\nb\rc\td":                "a?b?c?d",
		"\x1b[31mred":               "?[31mred",
		"bad \xff byte":             "bad ? byte",
		"ünïcödé":                   "ünïcödé",
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// In the appliance, a process init did not start is found; a supervised
// child and its descendants from the same executable are not.
func TestProcessesAppliance(t *testing.T) {
	parent := startHelper(t, "spawn", 0)
	kids := parent.ready(t, "")
	if len(kids) != 2 {
		t.Fatalf("spawn said %v", kids)
	}
	same, _ := strconv.Atoi(kids[0])
	other, _ := strconv.Atoi(kids[1])
	stranger := startSleep(t)

	env := newEnv(t)
	env.Supervised = true
	env.Protected = map[int]string{parent.cmd.Process.Pid: "inference"}
	got, err := Processes{}.Scan(env)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pid     int
		foreign bool
	}{
		{"supervised child", parent.cmd.Process.Pid, false},
		{"its re-exec", same, false},
		{"its other program", other, true},
		{"a stranger", stranger.Process.Pid, true},
		{"the watchdog itself", os.Getpid(), false},
	}
	for _, tc := range tests {
		f := matching(got, fmt.Sprintf("pid %d (", tc.pid), "was not started by init")
		if (len(f) == 1) != tc.foreign {
			t.Errorf("%s (pid %d): reported %v, want reported=%v", tc.name, tc.pid, f, tc.foreign)
		}
	}
	for _, f := range got {
		if env.Proc(pidOf(f.Key)) != nil && env.Proc(pidOf(f.Key)).Kernel {
			t.Errorf("kernel thread reported: %v", f)
		}
	}
}

func TestIsTool(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"gdb", true}, {"strace", true}, {"frida-server", true}, {"memcheck-amd64-", true},
		{"tcpdump", true}, {"bpftrace", true}, {"perf", true},
		{"kwyre-inference", false}, {"sleep", false}, {"gdbus", false}, {"perfect", false}, {"", false},
	}
	for _, tc := range tests {
		if got := IsTool(tc.name); got != tc.want {
			t.Errorf("IsTool(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func pidOf(key string) int {
	var kind string
	var pid int
	fmt.Sscanf(key, "%s %d", &kind, &pid)
	return pid
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
