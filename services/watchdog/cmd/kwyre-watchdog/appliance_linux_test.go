package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kwyre/kwyre/services/watchdog"
)

// fakeInit plays PID 1 of a fresh PID namespace the way kwyre-init does for
// the watchdog: its own /proc, an inference service, supervised.json, the
// watchdog with a report pipe on fd 3 in appliance mode. On "stranger" from
// stdin it starts a process it does not list; report lines are echoed.
func fakeInit() error {
	dir := os.Getenv("KWYRE_WD_DIR")
	procDir := filepath.Join(dir, "proc")
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("proc", procDir, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc: %w", err)
	}
	self, _ := os.Executable()
	start := func(mode string, extra []*os.File, args ...string) (*exec.Cmd, error) {
		c := exec.Command(self, args...)
		c.Env = append(os.Environ(), "KWYRE_WD_MAIN="+mode)
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		c.ExtraFiles = extra
		if len(extra) > 0 {
			c.Env = append(c.Env, "KWYRE_REPORT_FD=3")
		}
		return c, c.Start()
	}
	sup := filepath.Join(dir, "supervised.json")
	writeSup := func(pids map[string]int) error {
		b, _ := json.Marshal(map[string]any{"pids": pids})
		tmp := sup + ".tmp"
		if err := os.WriteFile(tmp, b, 0o444); err != nil {
			return err
		}
		return os.Rename(tmp, sup)
	}
	inf, err := start("usr1", nil)
	if err != nil {
		return err
	}
	pids := map[string]int{"inference": inf.Process.Pid}
	if err := writeSup(pids); err != nil {
		return err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	wd, err := start("1", []*os.File{pw}, "--", "-appliance", "-proc", procDir, "-supervised", sup,
		"-state", filepath.Join(dir, "state.json"), "-interval", "100ms", "-scanners", "processes,tracer", "-no-gpu")
	if err != nil {
		return err
	}
	pw.Close()
	pids["watchdog"] = wd.Process.Pid
	if err := writeSup(pids); err != nil {
		return err
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Println("report", sc.Text())
		}
	}()
	// Reap what is orphaned to us, as init does.
	go func() {
		for {
			var ws unix.WaitStatus
			if _, err := unix.Wait4(-1, &ws, 0, nil); err == unix.ECHILD {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	fmt.Println("ready", inf.Process.Pid, wd.Process.Pid)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "stranger" {
			s := exec.Command("sleep", "60")
			if err := s.Start(); err != nil {
				return err
			}
			fmt.Println("stranger", s.Process.Pid)
		}
	}
	return nil // stdin closed: the test is done; the namespace dies with us
}

// Appliance mode in a PID namespace of its own, with init's supervised list:
// init, its children and the watchdog itself are quiet; a process init did
// not start is reported on the pipe within two scans and the inference
// service is told to wipe.
func TestApplianceModeInPIDNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "KWYRE_WD_MAIN=fakeinit", "KWYRE_WD_DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// next waits for a line starting with each prefix, in any order (the
	// signal and the report race), and returns them by prefix.
	next := func(prefixes ...string) map[string]string {
		t.Helper()
		got := map[string]string{}
		timeout := time.After(15 * time.Second)
		for len(got) < len(prefixes) {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("fake init ended while waiting for %q", prefixes)
				}
				if strings.HasPrefix(l, "error") {
					t.Fatalf("fake init: %s", l)
				}
				matched := false
				for _, p := range prefixes {
					if _, seen := got[p]; !seen && strings.HasPrefix(l, p) {
						got[p], matched = l, true
						break
					}
				}
				if !matched {
					t.Logf("fake init: %s", l)
				}
			case <-timeout:
				t.Fatalf("waiting for %q from fake init, got %v", prefixes, got)
			}
		}
		return got
	}
	next("ready")

	state := filepath.Join(dir, "state.json")
	var st watchdog.State
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var err error
		if st, err = watchdog.ReadState(state); err == nil && st.Scans >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watchdog made no 5 scans: %+v", st)
		}
	}
	if st.Triggered || len(st.Findings) != 0 || len(st.Errors) != 0 {
		t.Fatalf("quiet appliance not quiet: %+v", st)
	}

	if _, err := fmt.Fprintln(stdin, "stranger"); err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscanf(next("stranger")["stranger"], "stranger %d", &pid)
	alarm := next("report ", "inference-usr1")
	rep := strings.TrimPrefix(alarm["report "], "report ")
	var f struct{ Scanner, What string }
	if err := json.Unmarshal([]byte(rep), &f); err != nil {
		t.Fatalf("report %q: %v", rep, err)
	}
	want := fmt.Sprintf("pid %d (/usr/bin/sleep, parent 1) was not started by init", pid)
	if sleep, err := exec.LookPath("sleep"); err == nil {
		if real, err := filepath.EvalSymlinks(sleep); err == nil {
			want = fmt.Sprintf("pid %d (%s, parent 1) was not started by init", pid, real)
		}
	}
	if f.Scanner != "processes" || f.What != want {
		t.Fatalf("report %+v, want processes: %s", f, want)
	}
}
