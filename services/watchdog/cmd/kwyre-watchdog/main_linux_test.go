package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kwyre/kwyre/services/watchdog"
)

// With KWYRE_WD_MAIN=1 the test binary is kwyre-watchdog itself (its
// arguments follow "--"); with KWYRE_WD_MAIN=wait it just waits.
func TestMain(m *testing.M) {
	switch os.Getenv("KWYRE_WD_MAIN") {
	case "1":
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"kwyre-watchdog"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	case "wait":
		time.Sleep(300 * time.Second)
		os.Exit(0)
	case "fakeinit":
		if err := fakeInit(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "usr1":
		c := make(chan os.Signal, 4)
		signal.Notify(c, syscall.SIGUSR1)
		for range c {
			fmt.Println("inference-usr1")
		}
	}
	os.Exit(m.Run())
}

// watchdogCmd prepares the watchdog binary with args.
func watchdogCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"--"}, args...)...)
	cmd.Env = append(os.Environ(), "KWYRE_WD_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// The appliance runs the watchdog as its own uid with only CAP_SYS_PTRACE,
// CAP_DAC_READ_SEARCH and CAP_KILL. With those it must still see root's
// packet socket and perf fd, and an up link in a namespace it may not enter.
func TestUnprivilegedWithAppliancesCaps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create the objects and switch uid")
	}
	pkt, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0x0300) // htons(ETH_P_ALL)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pkt)
	ns := exec.Command(os.Args[0])
	ns.Env = append(os.Environ(), "KWYRE_WD_MAIN=wait")
	ns.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Process.Kill(); ns.Wait() }()
	peer := vethUpIn(t, ns.Process.Pid)

	bin := unprivilegedCopy(t)
	cmd := watchdogCmd(t, "-once", "-no-gpu", "-state", "", "-supervised", "")
	cmd.Path = bin
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 802, Gid: 802}
	cmd.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_SYS_PTRACE, unix.CAP_DAC_READ_SEARCH, unix.CAP_KILL}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("watchdog as uid 802: %v", err)
	}
	var st watchdog.State
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	self := fmt.Sprintf("pid %d ", os.Getpid())
	checks := []struct{ name, a, b string }{
		{"root's packet socket", "packet socket", "held by " + self},
		{"up link in a foreign netns", "link " + peer + " is up", fmt.Sprintf("seen through pid %d", ns.Process.Pid)},
	}
	for _, c := range checks {
		found := false
		for _, f := range st.Findings {
			found = found || (strings.Contains(f.What, c.a) && strings.Contains(f.What, c.b))
		}
		if !found {
			t.Errorf("%s not found: %+v", c.name, st.Findings)
		}
	}
	// The only error allowed is a namespace even root cannot read here (the
	// sandbox's own pid 1 on a development machine), and never one of ours.
	rootBlind := rootCannotReadSomeNetns()
	for _, e := range st.Errors {
		blind := strings.Contains(e, ": cannot read the network namespace of ")
		if !blind || !rootBlind || strings.Contains(e, fmt.Sprintf(" %d/", os.Getpid())) ||
			strings.Contains(e, fmt.Sprintf(" %d/", ns.Process.Pid)) {
			t.Errorf("scanner failed without root: %s", e)
		}
	}
}

// rootCannotReadSomeNetns reports whether some process's network namespace is
// hidden from this (root) test process as well.
func rootCannotReadSomeNetns() bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if _, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err != nil && errors.Is(err, os.ErrPermission) {
			return true
		}
	}
	return false
}

// unprivilegedCopy copies the test binary where uid 802 can run it (go test's
// own folder is private to root).
func unprivilegedCopy(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kwyre-wd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := dir + "/kwyre-watchdog.test"
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func vethUpIn(t *testing.T, pid int) string {
	t.Helper()
	host, peer := fmt.Sprintf("kwc%d", pid%1000000), fmt.Sprintf("kwq%d", pid%1000000)
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: peer}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(host); err == nil {
			netlink.LinkDel(l)
		}
	})
	pl, err := netlink.LinkByName(peer)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetNsPid(pl, pid); err != nil {
		t.Fatal(err)
	}
	h, err := netns.GetFromPid(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	if pl, err = nh.LinkByName(peer); err != nil {
		t.Fatal(err)
	}
	if err := nh.LinkSetUp(pl); err != nil {
		t.Fatal(err)
	}
	return peer
}

// The binary end to end: a tracer on a protected process makes it write one
// report line on KWYRE_REPORT_FD and mark the state triggered; SIGTERM ends
// it with status 0 and the state not running.
func TestReportFDAndSIGTERM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to ptrace")
	}
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace not installed")
	}
	victim := exec.Command("sleep", "120")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { victim.Process.Kill(); victim.Wait() }()
	dir := t.TempDir()
	state := dir + "/state.json"
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := watchdogCmd(t, "-interval", "100ms", "-scanners", "tracer,processes", "-state", state, "-supervised", "",
		"-protect", strconv.Itoa(victim.Process.Pid))
	cmd.Env = append(cmd.Env, "KWYRE_REPORT_FD=3")
	cmd.ExtraFiles = []*os.File{pw}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	defer cmd.Process.Kill()

	st := exec.Command("strace", "-p", strconv.Itoa(victim.Process.Pid), "-o", os.DevNull)
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { st.Process.Kill(); st.Wait() }()

	pr.SetReadDeadline(time.Now().Add(15 * time.Second))
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no report: %v", err)
	}
	var rep struct{ Scanner, What string }
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatalf("report %q: %v", line, err)
	}
	// Development mode also knows strace by name; either scanner may win.
	want := map[string]string{"tracer": fmt.Sprintf("(pid %d", victim.Process.Pid), "processes": "inspection tool strace"}
	if w, ok := want[rep.Scanner]; !ok || !strings.Contains(rep.What, w) {
		t.Fatalf("report %q", line)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	s, err := watchdog.ReadState(state)
	if err != nil {
		t.Fatal(err)
	}
	if s.Running || !s.Triggered {
		t.Fatalf("state %+v", s)
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("state file mode: %v %v", fi.Mode(), err)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-allow-listen", "0.0.0.0:8000", "-once"},
		{"-protect", "abc", "-once"},
		{"-boot-device", "/nonexistent/device", "-once"},
		{"-interval", "0s", "-state", ""},
		{"extra"},
		{"-scanners", "tracer,nonsense", "-once"},
	} {
		cmd := watchdogCmd(t, args...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%v: accepted", args)
			continue
		}
		if !strings.Contains(string(out), "kwyre-watchdog:") {
			t.Errorf("%v: unclear error %q", args, out)
		}
	}
	// KWYRE_REPORT_FD that is not a number.
	cmd := watchdogCmd(t, "-state", "")
	cmd.Env = append(cmd.Env, "KWYRE_REPORT_FD=x")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "KWYRE_REPORT_FD") {
		t.Errorf("bad KWYRE_REPORT_FD: %v %q", err, out)
	}
}

// Without the appliance's capabilities the watchdog cannot see other uids'
// descriptors, and says so instead of reporting them clean.
func TestWithoutCapsSaysItIsBlind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch uid")
	}
	cmd := watchdogCmd(t, "-once", "-scanners", "fds", "-state", "", "-supervised", "")
	cmd.Path = unprivilegedCopy(t)
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 802, Gid: 802}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var st watchdog.State
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "fds: cannot read the fds of") {
		t.Fatalf("errors %q", st.Errors)
	}
}
