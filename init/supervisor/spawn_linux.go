package supervisor

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kwyre/kwyre/init/caps"
)

// spec is everything needed to start one child process.
type spec struct {
	Path  string
	Args  []string // argv[1:]
	Env   []string
	UID   uint32
	GID   uint32
	Caps  []uintptr // ambient (and the only ones left in the bounding set)
	NetNS int       // fd of a network namespace to start in; -1 = init's own
	Ctty  bool      // make Stdin the controlling terminal of a new session
	Files []*os.File
}

// spawn starts the child described by s and returns its pid.
//
// The no_new_privs flag, the bounding set and the network namespace are
// per-thread attributes a child inherits at clone, so spawn sets them on a
// locked OS thread of its own, forks from that thread, and then lets the
// thread die (the goroutine ends while locked) so that no other goroutine
// ever runs with the reduced credentials. syscall.ForkExec then sets the
// groups (empty), gid, uid and ambient capabilities in the child.
func spawn(s spec) (int, error) {
	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread is tainted and must exit with us.
		pid, err := spawnOnThisThread(s)
		done <- result{pid, err}
	}()
	r := <-done
	return r.pid, r.err
}

func spawnOnThisThread(s spec) (int, error) {
	if s.NetNS >= 0 {
		if err := unix.Setns(s.NetNS, unix.CLONE_NEWNET); err != nil {
			return 0, fmt.Errorf("enter services' network namespace: %w", err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("set no_new_privs: %w", err)
	}
	keep := make(map[uintptr]bool, len(s.Caps))
	for _, c := range s.Caps {
		keep[c] = true
	}
	last, err := lastCap()
	if err != nil {
		return 0, err
	}
	for c := uintptr(0); c <= last; c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			return 0, fmt.Errorf("drop %s from the bounding set: %w", caps.Name(c), err)
		}
	}
	fds := make([]uintptr, len(s.Files))
	for i, f := range s.Files {
		fds[i] = f.Fd()
	}
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   s.Env,
		Files: fds,
		Sys: &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: s.UID, Gid: s.GID, Groups: []uint32{}},
			AmbientCaps: s.Caps,
			Setsid:      true,
			Setctty:     s.Ctty,
			Ctty:        0,
		},
	}
	pid, err := syscall.ForkExec(s.Path, append([]string{s.Path}, s.Args...), attr)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Path, err)
	}
	return pid, nil
}

// lastCap is the kernel's highest capability number.
func lastCap() (uintptr, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read cap_last_cap: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("read cap_last_cap: bad value %q", b)
	}
	return uintptr(n), nil
}
