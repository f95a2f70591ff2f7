package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kwyre/kwyre/init/caps"
	"github.com/kwyre/kwyre/init/config"
	"github.com/kwyre/kwyre/init/reaper"
)

// Keep the main goroutine on the main thread, as init does, so that the
// threads tests taint (netns, bounding set) are never the thread group
// leader that /proc/self shows.
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("supervisor tests need root (they start children as other users)")
		os.Exit(0)
	}
	// Orphans of the children come back to us, as they would to PID 1.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r = reaper.New()
	go r.Run(make(chanCtx))
	os.Exit(m.Run())
}

// One reaper for the whole test process, as in init.
var r *reaper.Reaper

// chanCtx is a context that never ends.
type chanCtx chan struct{}

func (c chanCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c chanCtx) Done() <-chan struct{}       { return c }
func (c chanCtx) Err() error                  { return nil }
func (c chanCtx) Value(any) any               { return nil }

// recorder collects events and console output.
type recorder struct {
	mu     sync.Mutex
	events []Event
	out    bytes.Buffer
	fatal  chan string
}

func newRecorder() *recorder { return &recorder{fatal: make(chan string, 1)} }

func (rc *recorder) Write(p []byte) (int, error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.out.Write(p)
}

func (rc *recorder) onEvent(e Event) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.events = append(rc.events, e)
}

func (rc *recorder) of(kind EventKind) []Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []Event
	for _, e := range rc.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (rc *recorder) output() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.out.String()
}

func (rc *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; output:\n%s", what, rc.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newSupervisor(t *testing.T, rc *recorder, netns int, pol Policy) *Supervisor {
	t.Helper()
	s, err := New(Options{
		Reaper:    r,
		NetNS:     netns,
		Console:   rc,
		Ring:      NewRing(4096),
		StateFile: filepath.Join(t.TempDir(), "supervised.json"),
		Policy:    pol,
		OnFatal: func(why string, critical bool) {
			rc.fatal <- fmt.Sprintf("critical=%v %s", critical, why)
		},
		OnEvent: rc.onEvent,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(2 * time.Second) })
	return s
}

// newNetNS makes a network namespace and returns an fd for it, without
// moving the test process into it.
func newNetNS(t *testing.T) (fd int, ino uint64) {
	t.Helper()
	type res struct {
		fd  int
		err error
	}
	ch := make(chan res)
	go func() {
		runtime.LockOSThread() // the thread dies with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- res{-1, err}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		ch <- res{fd, err}
	}()
	x := <-ch
	if x.err != nil {
		t.Fatalf("new network namespace: %v", x.err)
	}
	t.Cleanup(func() { unix.Close(x.fd) })
	var st unix.Stat_t
	if err := unix.Fstat(x.fd, &st); err != nil {
		t.Fatal(err)
	}
	return x.fd, st.Ino
}

func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string)
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// waitExec waits until pid runs the program named comm (after execve).
func waitExec(t *testing.T, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(b)) == comm {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never became %s (comm %q)", pid, comm, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestChildAttributes(t *testing.T) {
	nsfd, nsIno := newNetNS(t)
	var myNS unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &myNS); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		svc     config.Service
		wantIno uint64
	}{
		{"watchdog-like", config.Service{
			Name: "wd", Path: "/bin/sleep", Args: []string{"60"}, UID: 802, GID: 812,
			Caps: []string{"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_KILL"}, Restart: "critical",
			Env: []string{"KWYRE_X=1"},
		}, myNS.Ino},
		{"inference-like", config.Service{
			Name: "inf", Path: "/bin/sleep", Args: []string{"60"}, UID: 801, GID: 801,
			NetNS: true, Restart: "backoff",
		}, nsIno},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newRecorder()
			s := newSupervisor(t, rc, nsfd, Policy{})
			os.Setenv("KWYRE_LEAK", "secret") // must not reach the child
			defer os.Unsetenv("KWYRE_LEAK")
			if err := s.Start([]Child{{Service: tt.svc, ExtraEnv: []string{"KWYRE_REPORT_FD=3"}}}); err != nil {
				t.Fatal(err)
			}
			pid := s.Pids()[tt.svc.Name]
			if pid == 0 {
				t.Fatal("no pid")
			}
			waitExec(t, pid, "sleep")
			st := procStatus(t, pid)
			id := func(n uint32) string { s := strconv.Itoa(int(n)); return s + "\t" + s + "\t" + s + "\t" + s }
			capList, _ := caps.ParseList(tt.svc.Caps)
			mask := fmt.Sprintf("%016x", caps.Mask(capList))
			want := map[string]string{
				"Uid": id(tt.svc.UID), "Gid": id(tt.svc.GID), "Groups": "",
				"NoNewPrivs": "1", "CapInh": mask, "CapPrm": mask, "CapEff": mask,
				"CapAmb": mask, "CapBnd": mask,
			}
			for k, v := range want {
				if st[k] != v {
					t.Errorf("%s = %q, want %q", k, st[k], v)
				}
			}
			var ns unix.Stat_t
			if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &ns); err != nil {
				t.Fatal(err)
			}
			if ns.Ino != tt.wantIno {
				t.Errorf("netns inode %d, want %d", ns.Ino, tt.wantIno)
			}
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if err != nil {
				t.Fatal(err)
			}
			wantEnv := strings.Join(append(append(tt.svc.Env, "KWYRE_REPORT_FD=3"), "PATH=/bin"), "\x00") + "\x00"
			if string(env) != wantEnv {
				t.Errorf("environ = %q, want %q", env, wantEnv)
			}
			limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(limits), "Max core file size        0                    0") {
				t.Errorf("core limit not 0:\n%s", limits)
			}
			sid, _ := unix.Getsid(pid)
			if sid != pid {
				t.Errorf("child session %d, want its own (%d)", sid, pid)
			}
			stState, err := ReadState(s.opt.StateFile)
			if err != nil || stState.Pids[tt.svc.Name] != pid {
				t.Errorf("state file = %+v, %v", stState, err)
			}
			fi, err := os.Stat(s.opt.StateFile)
			if err != nil || fi.Mode().Perm() != 0o444 {
				t.Errorf("state file mode = %v, %v", fi.Mode(), err)
			}
		})
	}
}

func TestNetNSWithoutNamespaceRefused(t *testing.T) {
	rc := newRecorder()
	s := newSupervisor(t, rc, -1, Policy{})
	err := s.Start([]Child{{Service: config.Service{Name: "inf", Path: "/bin/sleep", Args: []string{"9"}, UID: 801, GID: 801, NetNS: true, Restart: "backoff"}}})
	if err == nil || !strings.Contains(err.Error(), "network namespace") {
		t.Fatalf("Start = %v", err)
	}
}

func TestStartFailureStopsOthers(t *testing.T) {
	rc := newRecorder()
	s := newSupervisor(t, rc, -1, Policy{})
	err := s.Start([]Child{
		{Service: config.Service{Name: "a", Path: "/bin/sleep", Args: []string{"60"}, UID: 801, GID: 801, Restart: "backoff"}},
		{Service: config.Service{Name: "b", Path: "/nonexistent/bin", UID: 801, GID: 801, Restart: "backoff"}},
	})
	if err == nil || !strings.Contains(err.Error(), "service b") {
		t.Fatalf("Start = %v", err)
	}
	rc.waitFor(t, "a to be stopped", func() bool { return len(rc.of(Exited)) == 1 })
	if len(s.Pids()) != 0 {
		t.Fatalf("pids left: %v", s.Pids())
	}
}

func TestCrashLoopBackoff(t *testing.T) {
	rc := newRecorder()
	pol := Policy{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond, Limit: 5, Window: time.Minute, StableAfter: time.Minute}
	s := newSupervisor(t, rc, -1, pol)
	if err := s.Start([]Child{{Service: config.Service{Name: "crasher", Path: "/bin/sh", Args: []string{"-c", "echo crashing; exit 3"}, UID: 801, GID: 801, Restart: "backoff"}}}); err != nil {
		t.Fatal(err)
	}
	var why string
	select {
	case why = <-rc.fatal:
	case <-time.After(15 * time.Second):
		t.Fatalf("no crash-loop halt; output:\n%s", rc.output())
	}
	if !strings.Contains(why, "critical=false crash loop: service crasher failed 5 times") || !strings.Contains(why, "exit status 3") {
		t.Errorf("fatal reason = %q", why)
	}
	starts, exits := rc.of(Started), rc.of(Exited)
	if len(starts) != 5 || len(exits) != 5 {
		t.Fatalf("%d starts, %d exits, want 5 each; output:\n%s", len(starts), len(exits), rc.output())
	}
	// The gap from each exit to the next start follows the backoff.
	wantDelay := []time.Duration{100, 200, 400, 400}
	for i, d := range wantDelay {
		gap := starts[i+1].At.Sub(exits[i].At)
		min := d * time.Millisecond
		if gap < min || gap > min+2*time.Second {
			t.Errorf("restart %d after %v, want about %v", i+1, gap, min)
		}
		t.Logf("restart %d after %v (backoff %v)", i+1, gap.Round(time.Millisecond), min)
	}
	if !strings.Contains(rc.output(), "crasher: crashing\n") {
		t.Errorf("child output missing from console:\n%s", rc.output())
	}
	if !bytes.Contains(s.opt.Ring.Bytes(), []byte("crasher: crashing\n")) {
		t.Errorf("child output missing from ring: %q", s.opt.Ring.Bytes())
	}
	if len(s.Pids()) != 0 {
		t.Errorf("still running after the halt: %v", s.Pids())
	}
}

func TestCritical(t *testing.T) {
	dir, err := os.MkdirTemp("", "kwyre-supervisor-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		script    string
		breakBin  bool // remove the program after the first start
		wantFatal string
	}{
		{"dies twice", "exit 1", false, "died again"},
		{"restart fails", "exit 1", true, "restart failed"},
		{"one death is survived", `if [ -e "$D/once" ]; then exec sleep 60; fi; touch "$D/once"; exit 1`, false, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := filepath.Join(dir, fmt.Sprintf("svc%d", i))
			if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+tt.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			d := filepath.Join(dir, fmt.Sprint(i))
			os.Mkdir(d, 0o777)
			os.Chmod(d, 0o777)
			rc := newRecorder()
			var once sync.Once
			s := newSupervisor(t, rc, -1, Policy{})
			s.opt.OnEvent = func(e Event) {
				rc.onEvent(e)
				if tt.breakBin && e.Kind == Started {
					once.Do(func() { os.Remove(bin) })
				}
			}
			if err := s.Start([]Child{{Service: config.Service{Name: "wd", Path: bin, Env: []string{"D=" + d}, UID: 802, GID: 802, Restart: "critical"}}}); err != nil {
				t.Fatal(err)
			}
			if tt.wantFatal == "" {
				rc.waitFor(t, "the restarted child", func() bool { return len(rc.of(Started)) == 2 })
				waitExec(t, s.Pids()["wd"], "sleep")
				select {
				case why := <-rc.fatal:
					t.Fatalf("fatal after one death: %s", why)
				case <-time.After(500 * time.Millisecond):
				}
				return
			}
			select {
			case why := <-rc.fatal:
				if !strings.Contains(why, tt.wantFatal) || !strings.Contains(why, "critical=true critical service wd") {
					t.Errorf("fatal = %q, want %q", why, tt.wantFatal)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no fatal; output:\n%s", rc.output())
			}
		})
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	rc := newRecorder()
	s := newSupervisor(t, rc, -1, Policy{})
	if err := s.Start([]Child{
		{Service: config.Service{Name: "polite", Path: "/bin/sleep", Args: []string{"60"}, UID: 801, GID: 801, Restart: "backoff"}},
		{Service: config.Service{Name: "stubborn", Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; echo ready; sleep 60; sleep 60"}, UID: 801, GID: 801, Restart: "backoff"}},
	}); err != nil {
		t.Fatal(err)
	}
	rc.waitFor(t, "stubborn ready", func() bool { return strings.Contains(rc.output(), "stubborn: ready") })
	start := time.Now()
	killed := s.Stop(300 * time.Millisecond)
	took := time.Since(start)
	if len(killed) != 1 || killed[0] != "stubborn" {
		t.Errorf("killed = %v, want [stubborn]", killed)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("Stop took %v", took)
	}
	if len(s.Pids()) != 0 {
		t.Errorf("pids left: %v", s.Pids())
	}
	exits := rc.of(Exited)
	if len(exits) != 2 {
		t.Fatalf("exits = %v", exits)
	}
	for _, e := range exits {
		if !e.Exit.Status.Signaled() {
			t.Errorf("%s: %v, want killed by a signal", e.Name, e.Exit)
		}
	}
	if len(rc.of(Restarting)) != 0 || len(rc.of(Started)) != 2 {
		t.Errorf("restarted during Stop: %v", rc.events)
	}
}

func TestExtraFile(t *testing.T) {
	rc := newRecorder()
	s := newSupervisor(t, rc, -1, Policy{})
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if err := s.Start([]Child{{
		Service:    config.Service{Name: "wd", Path: "/bin/sh", Args: []string{"-c", `echo '{"scanner":"x","what":"y"}' >&$KWYRE_REPORT_FD; exec sleep 60`}, UID: 802, GID: 802, Restart: "critical"},
		ExtraEnv:   []string{"KWYRE_REPORT_FD=3"},
		ExtraFiles: []*os.File{pw},
	}}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	pr.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := pr.Read(buf)
	if err != nil || string(buf[:n]) != "{\"scanner\":\"x\",\"what\":\"y\"}\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

func TestTTY(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts := fmt.Sprintf("/dev/pts/%d", n)
	os.Chown(pts, 803, 803)
	rc := newRecorder()
	s := newSupervisor(t, rc, -1, Policy{})
	// Writing to /dev/tty works only with a controlling terminal.
	if err := s.Start([]Child{{Service: config.Service{Name: "console", Path: "/bin/sh", Args: []string{"-c", "echo ctty-ok >/dev/tty; exec sleep 60"}, UID: 803, GID: 803, TTY: pts, Restart: "backoff"}}}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		var all []byte
		buf := make([]byte, 256)
		for !bytes.Contains(all, []byte("ctty-ok")) {
			n, err := master.Read(buf)
			if err != nil {
				break
			}
			all = append(all, buf[:n]...)
		}
		got <- string(all)
	}()
	select {
	case s := <-got:
		if !strings.Contains(s, "ctty-ok") {
			t.Fatalf("tty output %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing on the tty; output:\n%s", rc.output())
	}
}

// TestLastWordsBeforeExit: a child's final output reaches the console
// before its exit is reported (and so before a shutdown powers off).
func TestLastWordsBeforeExit(t *testing.T) {
	rc := newRecorder()
	s := newSupervisor(t, rc, -1, Policy{Initial: time.Hour, Max: time.Hour, Limit: 5, Window: time.Minute, StableAfter: time.Minute})
	seen := make(chan bool, 1)
	s.opt.OnEvent = func(e Event) {
		rc.onEvent(e)
		if e.Kind == Exited {
			seen <- strings.Contains(rc.output(), "talker: last words\n")
		}
	}
	if err := s.Start([]Child{{Service: config.Service{Name: "talker", Path: "/bin/sh", Args: []string{"-c", "echo last words; exit 1"}, UID: 801, GID: 801, Restart: "backoff"}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-seen:
		if !ok {
			t.Fatalf("exit reported before the output; console:\n%s", rc.output())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit")
	}
}
