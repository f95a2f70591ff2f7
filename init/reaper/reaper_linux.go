// Package reaper is PID 1's single wait4 loop: it reaps every child that
// exits — services and orphans reparented to init alike — and hands each
// exit status to the goroutine that started that child, so that reaping
// zombies never steals a status someone is waiting for.
//
// Nothing else in the process may call wait on its children while a Reaper
// runs (os/exec's Cmd.Wait included): start children through Spawn.
package reaper

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is the end of one child.
type Exit struct {
	Pid    int
	Status unix.WaitStatus
	At     time.Time
}

func (e Exit) String() string {
	switch {
	case e.Status.Exited():
		return fmt.Sprintf("exit status %d", e.Status.ExitStatus())
	case e.Status.Signaled():
		s := fmt.Sprintf("killed by signal %d (%v)", int(e.Status.Signal()), e.Status.Signal())
		if e.Status.CoreDump() {
			s += ", core dumped"
		}
		return s
	}
	return fmt.Sprintf("wait status %#x", uint32(e.Status))
}

// Reaper reaps children and dispatches their exit statuses.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan Exit
	orphans int // reaped children nobody waited for
	// OnOrphan, when set before Run, is called (under no lock) for each
	// reaped child nobody registered.
	OnOrphan func(Exit)
}

// New returns a Reaper; call Run to start reaping.
func New() *Reaper {
	return &Reaper{waiters: make(map[int]chan Exit)}
}

// Spawn calls start, which must create exactly one child and return its
// pid, and returns a channel that receives that child's exit. The reaper
// cannot reap the child before it is registered: start runs under the lock
// the reaping loop takes.
func (r *Reaper) Spawn(start func() (int, error)) (int, <-chan Exit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan Exit, 1)
	r.waiters[pid] = ch
	return pid, ch, nil
}

// Orphans returns how many children were reaped that nobody waited for.
func (r *Reaper) Orphans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// Run reaps on every SIGCHLD (and once a second, in case signals were
// merged or missed) until ctx ends.
func (r *Reaper) Run(ctx context.Context) {
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, unix.SIGCHLD)
	defer signal.Stop(sig)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.ReapOnce()
		select {
		case <-ctx.Done():
			return
		case <-sig:
		case <-tick.C:
		}
	}
}

// ReapOnce reaps every child that has exited by now.
func (r *Reaper) ReapOnce() {
	var lost []Exit
	r.mu.Lock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD: no children; 0: none exited
			break
		}
		e := Exit{Pid: pid, Status: ws, At: time.Now()}
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- e
			continue
		}
		r.orphans++
		lost = append(lost, e)
	}
	r.mu.Unlock()
	if r.OnOrphan != nil {
		for _, e := range lost {
			r.OnOrphan(e)
		}
	}
}
