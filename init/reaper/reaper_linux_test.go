package reaper

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain makes the test process a child subreaper, so that orphaned
// grandchildren are reparented to it as they would be to PID 1.
func TestMain(m *testing.M) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func forkSh(script string) func() (int, error) {
	return func() (int, error) {
		return syscall.ForkExec("/bin/sh", []string{"sh", "-c", script}, &syscall.ProcAttr{
			Files: []uintptr{0, 1, 2},
		})
	}
}

// zombies lists this process's children that are zombies.
func zombies(t *testing.T) []int {
	t.Helper()
	me := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(me) {
			out = append(out, pid)
		}
	}
	return out
}

func TestReapDispatchesStatus(t *testing.T) {
	r := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	tests := []struct {
		script string
		want   string
	}{
		{"exit 0", "exit status 0"},
		{"exit 7", "exit status 7"},
		{"kill -9 $$", "killed by signal 9 (killed)"},
	}
	for _, tt := range tests {
		pid, ch, err := r.Spawn(forkSh(tt.script))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-ch:
			if e.Pid != pid || e.String() != tt.want {
				t.Errorf("%q: got pid %d %q, want pid %d %q", tt.script, e.Pid, e.String(), pid, tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: no exit status", tt.script)
		}
	}
}

// TestOrphansReapedWhileWaiterWaits: a registered child waits while other
// children leave orphaned grandchildren that exit; the reaper reaps the
// orphans (no zombie remains) and the waiter still gets its own status.
func TestOrphansReapedWhileWaiterWaits(t *testing.T) {
	r := New()
	orphaned := make(chan int, 32)
	r.OnOrphan = func(e Exit) { orphaned <- e.Pid }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	// The long-lived child whose status someone waits for.
	pid, ch, err := r.Spawn(forkSh("sleep 1; exit 42"))
	if err != nil {
		t.Fatal(err)
	}
	// Parents that exit at once, leaving a grandchild each that exits
	// 0.3 s later as an orphan of this process.
	const n = 5
	for i := 0; i < n; i++ {
		_, pch, err := r.Spawn(forkSh("sleep 0.3 & exit 0"))
		if err != nil {
			t.Fatal(err)
		}
		<-pch
	}
	got := 0
	deadline := time.After(10 * time.Second)
	for got < n {
		select {
		case <-orphaned:
			got++
		case <-deadline:
			t.Fatalf("only %d of %d orphans reaped; zombies %v", got, n, zombies(t))
		}
	}
	select {
	case e := <-ch:
		if e.Pid != pid || !e.Status.Exited() || e.Status.ExitStatus() != 42 {
			t.Fatalf("waiter got %v for pid %d, want exit 42 for %d", e, e.Pid, pid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter never got its status")
	}
	if z := zombies(t); len(z) != 0 {
		t.Fatalf("zombies left: %v", z)
	}
	if r.Orphans() != n {
		t.Errorf("Orphans() = %d, want %d", r.Orphans(), n)
	}
}

func TestSpawnError(t *testing.T) {
	r := New()
	_, _, err := r.Spawn(func() (int, error) {
		return syscall.ForkExec("/nonexistent/x", []string{"x"}, &syscall.ProcAttr{})
	})
	if err == nil {
		t.Fatal("Spawn of a missing binary succeeded")
	}
}
