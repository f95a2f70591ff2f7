package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kwyre/kwyre/init/config"
	"github.com/kwyre/kwyre/init/runstate"
	"github.com/kwyre/kwyre/init/shutdown"
	"github.com/kwyre/kwyre/init/steps"
	"github.com/kwyre/kwyre/init/supervisor"
)

// Paths inside the appliance.
const (
	configPath    = config.DefaultPath
	modelDir      = "/model"
	procSys       = "/proc/sys"
	sysRoot       = "/sys"
	dropCaches    = "/proc/sys/vm/drop_caches"
	cmdlinePath   = "/proc/cmdline"
	partitionWait = 15 * time.Second
	stopGrace     = 5 * time.Second
	linkTries     = 10 // a link seen up is looked at again, linkWait apart
	linkWait      = 100 * time.Millisecond
)

// appliance is the state init builds up while it boots.
type appliance struct {
	out     *syncWriter
	trig    chan string // power-off reasons; the first one wins
	haltReq chan string // reasons to stop the services and halt
	ctx     context.Context

	cfg       *config.Config
	netnsFD   int
	links     *runstate.LinkLog
	ring      *supervisor.Ring
	sup       *supervisor.Supervisor
	reportR   *os.File // watchdog report pipe, init's end
	reportW   *os.File // the watchdog's end, fd 3 in the child
	buttonsOn bool
}

func newAppliance(out io.Writer) *appliance {
	return &appliance{
		out:     &syncWriter{w: out},
		trig:    make(chan string, 16),
		haltReq: make(chan string, 1),
		ctx:     context.Background(),
		netnsFD: -1,
		ring:    supervisor.NewRing(64 << 10),
	}
}

// run boots and then waits for a reason to power off.
func (a *appliance) run() {
	fmt.Fprintln(a.out, "kwyre-init: starting")
	shutdown.NotifySignals(a.trig)
	if err := steps.Run(a.out, a.bootSteps()); err != nil {
		a.halt(err.Error())
		return
	}
	fmt.Fprintf(a.out, "kwyre-init: appliance ready (uptime %s)\n", uptime())
	select {
	case why := <-a.trig:
		a.powerOff(why)
	case why := <-a.haltReq:
		a.halt(why)
	}
}

// uptime is the kernel's uptime, for the boot-time figure.
func uptime() string {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0] + "s"
}

// powerOff runs the shutdown sequence and halts if the kernel refuses.
func (a *appliance) powerOff(why string) {
	seq := shutdown.Sequence{
		Out:        a.out,
		Grace:      stopGrace,
		Wipe:       a.ring.Wipe,
		DropCaches: dropCaches,
	}
	if a.sup != nil {
		seq.Stop = a.sup.Stop
	}
	if err := seq.Run(why); err != nil {
		shutdown.Halt()
	}
	shutdown.Halt() // the kernel powers off under us
}

// halt ends a boot that failed: nothing was started (or everything is
// stopped). The message stays on screen; the power button, Ctrl-Alt-Del or
// SIGTERM then power off. With kwyre.halt=poweroff on the kernel command
// line (tests), it powers off at once.
func (a *appliance) halt(why string) {
	if a.sup != nil {
		a.sup.Stop(stopGrace)
	}
	fmt.Fprintf(a.out, "kwyre-init: stopped: %s\n", why)
	if a.sup == nil {
		fmt.Fprintln(a.out, "kwyre-init: no service was started; the system is halted. Press the power button to power off.")
	} else {
		fmt.Fprintln(a.out, "kwyre-init: all services are stopped; the system is halted. Press the power button to power off.")
	}
	unix.Sync()
	if cmdlineHas("kwyre.halt=poweroff") {
		a.powerOff("halted: " + why + " (kwyre.halt=poweroff powers off at once)")
	}
	if !a.buttonsOn {
		a.watchButtons() // best effort: /sys and /dev may not be mounted
	}
	a.powerOff(<-a.trig)
}

func (a *appliance) watchButtons() {
	a.buttonsOn = true
	shutdown.WatchPowerButton(a.ctx, "/sys/class/input", "/dev/input", func(dev string) {
		a.request(a.trig, "power button: "+dev)
	})
}

func cmdlineHas(word string) bool {
	b, err := os.ReadFile(cmdlinePath)
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(string(b)) {
		if f == word {
			return true
		}
	}
	return false
}

// syncWriter keeps lines from many goroutines whole on the console.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func mkdirOwned(p string, mode os.FileMode, uid, gid uint32) error {
	if err := os.MkdirAll(p, mode); err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	if err := os.Chown(p, int(uid), int(gid)); err != nil {
		return fmt.Errorf("chown %s: %w", p, err)
	}
	if err := os.Chmod(p, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	return nil
}

// request queues a reason to end without ever blocking the caller: once
// the queue is full, shutdown is under way and further reasons are moot.
func (a *appliance) request(ch chan string, why string) {
	select {
	case ch <- why:
	default:
	}
}
