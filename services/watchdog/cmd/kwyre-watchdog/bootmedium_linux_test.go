package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Pulling the stick, as the appliance runs the watchdog (uid 802, its three
// capabilities): a loop device created and removed through
// /dev/loop-control makes the kernel send a real "remove" uevent; the report
// arrives at once, not after the next tick of a one-hour interval, and
// CAP_KILL lets the wipe signal reach a service of another uid (root here).
func TestBootMediumRemovedUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create loop devices and switch uid")
	}
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no loop devices: %v", err)
	}
	defer unix.Close(ctl)
	n := -1
	for i := 6000 + os.Getpid()%1000; i < 8000; i++ {
		if _, err := os.Stat(fmt.Sprintf("/sys/class/block/loop%d", i)); os.IsNotExist(err) {
			n = i
			break
		}
	}
	if n < 0 {
		t.Skip("no free loop number")
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(ctl), unix.LOOP_CTL_ADD, uintptr(n)); errno != 0 {
		t.Fatalf("add loop%d: %v", n, errno)
	}
	removed := false
	defer func() {
		if !removed {
			unix.Syscall(unix.SYS_IOCTL, uintptr(ctl), unix.LOOP_CTL_REMOVE, uintptr(n))
		}
	}()
	name := fmt.Sprintf("loop%d", n)

	// The service to wipe: prints "inference-usr1" on SIGUSR1.
	svc := exec.Command(os.Args[0])
	svc.Env = append(os.Environ(), "KWYRE_WD_MAIN=usr1")
	svcOut, err := svc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { svc.Process.Kill(); svc.Wait() }()
	wiped := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(svcOut).ReadString('\n')
		wiped <- l
	}()

	bin := unprivilegedCopy(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := watchdogCmd(t, "-interval", "1h", "-scanners", "boot-medium", "-boot-device", "/dev/"+name,
		"-state", "", "-supervised", "", "-inference-pid", strconv.Itoa(svc.Process.Pid))
	cmd.Path = bin
	cmd.Env = append(cmd.Env, "KWYRE_REPORT_FD=3")
	cmd.ExtraFiles = []*os.File{pw}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 802, Gid: 802}
	cmd.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_SYS_PTRACE, unix.CAP_DAC_READ_SEARCH, unix.CAP_KILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// It logs "scanning every" once subscribed to uevents.
	started := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(os.Stderr, sc.Text())
			if strings.Contains(sc.Text(), "scanning every") {
				started <- true
			}
		}
		close(started)
	}()
	if ok := <-started; !ok {
		t.Fatal("watchdog ended before scanning")
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(ctl), unix.LOOP_CTL_REMOVE, uintptr(n)); errno != 0 {
		t.Fatalf("remove %s: %v", name, errno)
	}
	removed = true
	pr.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no report after removing %s: %v", name, err)
	}
	var rep struct{ Scanner, What string }
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatalf("report %q: %v", line, err)
	}
	if rep.Scanner != "boot-medium" {
		t.Fatalf("report %q", line)
	}
	if want1, want2 := "boot medium "+name+" was removed (kernel uevent)", "boot medium "+name+" is gone from /sys/class/block"; rep.What != want1 && rep.What != want2 {
		t.Fatalf("report %q", line)
	}
	select {
	case l := <-wiped:
		if l != "inference-usr1\n" {
			t.Fatalf("service said %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the service (root) got no SIGUSR1 from the uid-802 watchdog")
	}
}
