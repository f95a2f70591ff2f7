package watchdog

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/watchdog/scan"
)

// With KWYRE_WD_HELPER=usr1 the test binary prints "usr1" for every SIGUSR1 it
// receives: a stand-in only for checking where the signal lands.
func TestMain(m *testing.M) {
	if os.Getenv("KWYRE_WD_HELPER") == "usr1" {
		c := make(chan os.Signal, 4)
		signal.Notify(c, syscall.SIGUSR1)
		fmt.Println("ready")
		for range c {
			fmt.Println("usr1")
		}
	}
	os.Exit(m.Run())
}

type usr1Child struct {
	pid   int
	lines chan string
}

func startUSR1(t *testing.T) *usr1Child {
	t.Helper()
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "KWYRE_WD_HELPER=usr1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &usr1Child{pid: cmd.Process.Pid, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	if l := <-c.lines; l != "ready" {
		t.Fatalf("helper said %q", l)
	}
	return c
}

// traced starts sleep and attaches strace to it.
func traced(t *testing.T) (victim, tracer int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to ptrace")
	}
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace not installed")
	}
	sl := exec.Command("sleep", "120")
	if err := sl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sl.Process.Kill(); sl.Wait() })
	st := exec.Command("strace", "-p", strconv.Itoa(sl.Process.Pid), "-o", os.DevNull)
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Process.Kill(); st.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n, err := scan.TracerPID(fmt.Sprintf("/proc/%d/status", sl.Process.Pid)); err == nil && n != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("strace never attached")
		}
	}
	return sl.Process.Pid, st.Process.Pid
}

func writeSupervised(t *testing.T, path string, pids map[string]int) {
	t.Helper()
	b, _ := json.Marshal(Supervised{PIDs: pids})
	if err := os.WriteFile(path, b, 0o444); err != nil {
		t.Fatal(err)
	}
}

// readLine reads one report line from init's side of the pipe, or fails.
func readLine(t *testing.T, r *os.File, wait time.Duration) string {
	t.Helper()
	r.SetReadDeadline(time.Now().Add(wait))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("no report line: %v", err)
	}
	return line
}

// A traced protected process is a finding on the first scan and confirmed on
// the second: the inference service gets SIGUSR1, init gets one report line,
// the state file says triggered.
func TestConfirmOnSecondScan(t *testing.T) {
	victim, tracer := traced(t)
	inference := startUSR1(t)
	dir := t.TempDir()
	sup := filepath.Join(dir, "supervised.json")
	writeSupervised(t, sup, map[string]int{"inference": inference.pid, "console-tty1": victim})
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	state := filepath.Join(dir, "state.json")
	w, err := New(Config{Interval: time.Second, State: state, Supervised: sup,
		Scanners: []scan.Scanner{scan.Tracer{}}, Alarm: Alarm{Report: pw}})
	if err != nil {
		t.Fatal(err)
	}

	got, err := w.ScanOnce()
	if err != nil || len(got) != 0 {
		t.Fatalf("scan 1 confirmed %v, %v", got, err)
	}
	st, err := ReadState(state)
	if err != nil {
		t.Fatal(err)
	}
	if st.Triggered || st.Scans != 1 || len(st.Findings) != 1 || !strings.Contains(st.Findings[0].What,
		fmt.Sprintf("console-tty1 (pid %d, thread %d) is traced by pid %d (strace)", victim, victim, tracer)) {
		t.Fatalf("state after scan 1: %+v", st)
	}

	got, err = w.ScanOnce()
	if err != nil || len(got) != 1 {
		t.Fatalf("scan 2 confirmed %v, %v", got, err)
	}
	select {
	case l := <-inference.lines:
		if l != "usr1" {
			t.Fatalf("inference helper said %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("inference service got no SIGUSR1")
	}
	var rep struct{ Scanner, What string }
	line := readLine(t, pr, 5*time.Second)
	if err := json.Unmarshal([]byte(line), &rep); err != nil || rep.Scanner != "tracer" || rep.What != got[0].What {
		t.Fatalf("report line %q (%v)", line, err)
	}
	st, err = ReadState(state)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Triggered || !st.Running || st.Scans != 2 || len(st.Confirmed) != 1 {
		t.Fatalf("state after scan 2: %+v", st)
	}

	// Reported once: a third scan sends nothing more.
	if got, err := w.ScanOnce(); err != nil || len(got) != 0 {
		t.Fatalf("scan 3 confirmed %v, %v", got, err)
	}
	select {
	case l := <-inference.lines:
		t.Fatalf("second signal: %q", l)
	case <-time.After(200 * time.Millisecond):
	}
}

// The loop: nothing is reported while all is quiet; a tracer attached while
// it runs is reported within two scans; cancelling marks the state not
// running.
func TestRunDetectsTracerAttachedLater(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to ptrace")
	}
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace not installed")
	}
	sl := exec.Command("sleep", "120")
	if err := sl.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sl.Process.Kill(); sl.Wait() }()
	inference := startUSR1(t)
	dir := t.TempDir()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	state := filepath.Join(dir, "state.json")
	const interval = 200 * time.Millisecond
	w, err := New(Config{Interval: interval, State: state, Protect: []int{sl.Process.Pid},
		InferencePID: inference.pid, Scanners: []scan.Scanner{scan.Tracer{}}, Alarm: Alarm{Report: pw}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	waitState(t, state, func(s State) bool { return s.Scans >= 3 })
	if s, _ := ReadState(state); s.Triggered || len(s.Findings) != 0 {
		t.Fatalf("quiet system triggered: %+v", s)
	}

	st := exec.Command("strace", "-p", strconv.Itoa(sl.Process.Pid), "-o", os.DevNull)
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { st.Process.Kill(); st.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, err := scan.TracerPID(fmt.Sprintf("/proc/%d/status", sl.Process.Pid)); err == nil && n != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("strace never attached")
		}
	}
	before, err := ReadState(state)
	if err != nil {
		t.Fatal(err)
	}

	line := readLine(t, pr, 10*time.Second)
	if !strings.Contains(line, fmt.Sprintf(`"scanner":"tracer","what":"protected (pid %d`, sl.Process.Pid)) {
		t.Fatalf("report %q", line)
	}
	after := waitState(t, state, func(s State) bool { return s.Triggered })
	// When the state said scan k-1, scan k may have been under way and missed
	// the tracer; scans k+1 and k+2 see it, so k+2 confirms at the latest.
	if n := after.Scans - before.Scans; n > 3 {
		t.Errorf("confirmed %d scans after the tracer attached (state said %d)", n, before.Scans)
	}
	if l := <-inference.lines; l != "usr1" {
		t.Fatalf("inference helper said %q", l)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s, err := ReadState(state); err != nil || s.Running || !s.Triggered {
		t.Fatalf("state after stop: %+v, %v", s, err)
	}
}

func waitState(t *testing.T, path string, cond func(State) bool) State {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s, err := ReadState(path); err == nil && cond(s) {
			return s
		}
	}
	t.Fatal("state never reached the condition")
	return State{}
}

func TestAlarmReportsEvenWhenSignalFails(t *testing.T) {
	pr, pw := io.Pipe()
	a := Alarm{Report: pw}
	go func() {
		// A pid that cannot exist.
		err := a.Fire(scan.Finding{Scanner: "links", What: "link eth0 is up"}, 1<<30)
		pw.CloseWithError(err)
	}()
	b, err := io.ReadAll(pr)
	if string(b) != `{"scanner":"links","what":"link eth0 is up"}`+"\n" {
		t.Fatalf("report %q", b)
	}
	if err == nil || !strings.Contains(err.Error(), "signal inference pid") {
		t.Fatalf("signal failure not returned: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	sc := []scan.Scanner{scan.Tracer{}}
	for _, c := range []Config{
		{Interval: 0, Scanners: sc},
		{Interval: time.Second},
		{Interval: time.Second, Scanners: sc, Appliance: true},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}

// A scan that cannot read /proc at all still writes the state, saying why.
func TestBlindScanIsRecorded(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	w, err := New(Config{ProcRoot: filepath.Join(t.TempDir(), "no-proc"), Interval: time.Second, State: state,
		Scanners: []scan.Scanner{scan.Tracer{}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ScanOnce(); err == nil {
		t.Fatal("scan without /proc succeeded")
	}
	s, err := ReadState(state)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Running || s.Scans != 1 || len(s.Errors) != 1 || !strings.HasPrefix(s.Errors[0], "snapshot: open procfs") {
		t.Fatalf("state %+v", s)
	}
}
