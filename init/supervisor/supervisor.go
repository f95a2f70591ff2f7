// Package supervisor starts the appliance's services as init's children and
// keeps them running under a restart policy: each with its own uid and gid,
// no supplementary groups, no_new_privs, only the capabilities its config
// lists, a clean environment and, where asked, the services' network
// namespace. A service that crash-loops, or a critical one that dies twice,
// ends in OnFatal: init stops everything and halts after a crash loop, and
// powers off at once when a critical service is lost.
package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kwyre/kwyre/init/caps"
	"github.com/kwyre/kwyre/init/config"
	"github.com/kwyre/kwyre/init/reaper"
)

// Policy is the restart policy for "backoff" services.
type Policy struct {
	Initial     time.Duration // first restart delay
	Max         time.Duration // the delay doubles up to this
	Limit       int           // this many failures ...
	Window      time.Duration // ... within this window is a crash loop
	StableAfter time.Duration // a run this long resets the delay
}

// DefaultPolicy: 1 s doubling to 30 s; 5 failures within 2 minutes halt.
var DefaultPolicy = Policy{
	Initial:     time.Second,
	Max:         30 * time.Second,
	Limit:       5,
	Window:      2 * time.Minute,
	StableAfter: time.Minute,
}

// EventKind says what happened to a service.
type EventKind int

const (
	Started EventKind = iota + 1
	Exited
	StartFailed
	Restarting
	Fatal
)

// Event is one thing that happened to a service.
type Event struct {
	Name  string
	Kind  EventKind
	Pid   int
	At    time.Time
	Exit  reaper.Exit   // for Exited
	Err   error         // for StartFailed
	Delay time.Duration // for Restarting
	Why   string        // for Fatal
}

// Options configures a Supervisor.
type Options struct {
	Reaper  *reaper.Reaper // required; must be running
	NetNS   int            // fd of the services' network namespace; -1 = none
	Console io.Writer      // supervisor messages and children's output
	Ring    *Ring          // children's output, in RAM; may be nil
	// QuietConsole keeps children's INFO and DEBUG log records off the
	// console (they still reach Ring): for a console that a chat shares.
	QuietConsole bool
	StateFile    string // supervised.json; "" = none
	Path         string // PATH for children; "" = "/bin"
	Policy       Policy // zero = DefaultPolicy
	OnFatal      func(why string, critical bool)
	OnEvent      func(Event) // optional, called synchronously
}

// Child is one service to supervise.
type Child struct {
	Service    config.Service
	ExtraEnv   []string   // appended after the config's Env
	ExtraFiles []*os.File // become fd 3, 4, … in the child (kept open by the caller)
}

// Supervisor runs children.
type Supervisor struct {
	opt      Options
	out      *lockedWriter
	mu       sync.Mutex
	stopping bool
	stopCh   chan struct{}
	children []*child
	fatal    sync.Once
}

type child struct {
	Child
	caps []uintptr
	pid  int // 0 while not running; guarded by Supervisor.mu
	// registered: in Supervisor.children (from its first start on).
	registered bool
	// outDone is closed when this instance's output is copied out.
	outDone chan struct{}
	done    chan struct{}
}

// New checks opt and returns a Supervisor. It sets RLIMIT_CORE to 0 for the
// calling process, which every child inherits.
func New(opt Options) (*Supervisor, error) {
	if opt.Reaper == nil {
		return nil, errors.New("supervisor: no reaper")
	}
	if opt.Console == nil {
		opt.Console = io.Discard
	}
	if opt.Path == "" {
		opt.Path = "/bin"
	}
	if opt.Policy == (Policy{}) {
		opt.Policy = DefaultPolicy
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return nil, fmt.Errorf("set RLIMIT_CORE 0: %w", err)
	}
	return &Supervisor{opt: opt, out: &lockedWriter{w: opt.Console}, stopCh: make(chan struct{})}, nil
}

// Start starts every child once, in order. If one cannot start, those
// already started are stopped and the error names it. After Start the
// children are supervised until Stop.
func (s *Supervisor) Start(children []Child) error {
	for _, ch := range children {
		if err := ch.Service.Validate(); err != nil {
			s.Stop(time.Second)
			return fmt.Errorf("service %w", err)
		}
		c, err := caps.ParseList(ch.Service.Caps)
		if err != nil {
			s.Stop(time.Second)
			return fmt.Errorf("service %s: %w", ch.Service.Name, err)
		}
		if ch.Service.NetNS && s.opt.NetNS < 0 {
			s.Stop(time.Second)
			return fmt.Errorf("service %s: wants the services' network namespace, but there is none", ch.Service.Name)
		}
		c2 := &child{Child: ch, caps: c, done: make(chan struct{})}
		exit, err := s.start(c2)
		if err != nil {
			s.Stop(time.Second)
			return err
		}
		go s.supervise(c2, exit)
	}
	return nil
}

// Pids returns the pid of every running child by name.
func (s *Supervisor) Pids() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pidsLocked()
}

func (s *Supervisor) pidsLocked() map[string]int {
	m := make(map[string]int)
	for _, c := range s.children {
		if c.pid > 0 {
			m[c.Service.Name] = c.pid
		}
	}
	return m
}

// start starts one instance of c. It refuses once Stop has begun, so that
// no child outlives the shutdown.
func (s *Supervisor) start(c *child) (<-chan reaper.Exit, error) {
	svc := c.Service
	files, parentEnds, err := s.stdio(c)
	if err != nil {
		s.event(Event{Name: svc.Name, Kind: StartFailed, Err: err})
		return nil, err
	}
	defer closeAll(files) // the child holds its own copies now
	env := append(append(append([]string(nil), svc.Env...), c.ExtraEnv...), "PATH="+s.opt.Path)
	ns := -1
	if svc.NetNS {
		ns = s.opt.NetNS
	}
	sp := spec{
		Path: svc.Path, Args: svc.Args, Env: env, UID: svc.UID, GID: svc.GID,
		Caps: c.caps, NetNS: ns, Ctty: svc.TTY != "", Files: append(files, c.ExtraFiles...),
	}

	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		closeAll(parentEnds)
		return nil, errors.New("shutting down")
	}
	pid, exit, err := s.opt.Reaper.Spawn(func() (int, error) { return spawn(sp) })
	if err != nil {
		s.mu.Unlock()
		closeAll(parentEnds)
		err = fmt.Errorf("service %s: %w", svc.Name, err)
		s.event(Event{Name: svc.Name, Kind: StartFailed, Err: err})
		return nil, err
	}
	c.pid = pid
	if !c.registered {
		c.registered = true
		s.children = append(s.children, c)
	}
	s.writeStateLocked()
	s.mu.Unlock()

	c.outDone = make(chan struct{})
	if len(parentEnds) == 0 {
		close(c.outDone)
	}
	for _, r := range parentEnds {
		go func() {
			s.copyOutput(svc.Name, r)
			close(c.outDone)
		}()
	}
	s.event(Event{Name: svc.Name, Kind: Started, Pid: pid})
	return exit, nil
}

// stdio returns the child's fds 0, 1, 2 and the parent's ends of any pipes.
func (s *Supervisor) stdio(c *child) (files, parentEnds []*os.File, err error) {
	if c.Service.TTY != "" {
		tty, err := os.OpenFile(c.Service.TTY, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("service %s: open tty: %w", c.Service.Name, err)
		}
		return []*os.File{tty, tty, tty}, nil, nil
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, fmt.Errorf("service %s: open %s: %w", c.Service.Name, os.DevNull, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		null.Close()
		return nil, nil, fmt.Errorf("service %s: output pipe: %w", c.Service.Name, err)
	}
	return []*os.File{null, w, w}, []*os.File{r}, nil
}

func (s *Supervisor) supervise(c *child, exit <-chan reaper.Exit) {
	defer close(c.done)
	name := c.Service.Name
	pol := s.opt.Policy
	delay := pol.Initial
	var failures []time.Time
	restartedCritical := false
	startedAt := time.Now()
	for {
		// Wait for this instance to end, and for its last words (briefly:
		// a helper it left behind may hold the pipe open).
		e := <-exit
		select {
		case <-c.outDone:
		case <-time.After(500 * time.Millisecond):
		}
		s.mu.Lock()
		c.pid = 0
		s.writeStateLocked()
		stopping := s.stopping
		s.mu.Unlock()
		s.event(Event{Name: name, Kind: Exited, Pid: e.Pid, Exit: e})
		if stopping {
			return
		}
		ran := e.At.Sub(startedAt)

		for { // until an instance runs again
			if c.Service.Restart == config.RestartCritical {
				if restartedCritical {
					s.fatalf(name, true, "critical service %s died again (%v): no second restart", name, e)
					return
				}
				restartedCritical = true
				ex, err := s.start(c)
				if err != nil {
					if s.isStopping() {
						return
					}
					s.fatalf(name, true, "critical service %s died (%v) and its restart failed: %v", name, e, err)
					return
				}
				exit, startedAt = ex, time.Now()
				break
			}

			now := time.Now()
			kept := failures[:0]
			for _, t := range failures {
				if now.Sub(t) < pol.Window {
					kept = append(kept, t)
				}
			}
			failures = append(kept, now)
			if len(failures) >= pol.Limit {
				s.fatalf(name, false, "crash loop: service %s failed %d times within %s (last: %v)", name, len(failures), pol.Window, e)
				return
			}
			if ran >= pol.StableAfter {
				delay = pol.Initial
			}
			s.event(Event{Name: name, Kind: Restarting, Delay: delay})
			select {
			case <-time.After(delay):
			case <-s.stopCh:
				return
			}
			delay = min(2*delay, pol.Max)
			ex, err := s.start(c)
			if err != nil {
				if s.isStopping() {
					return
				}
				ran = 0 // a failed start is a failure too
				continue
			}
			exit, startedAt = ex, time.Now()
			break
		}
	}
}

func (s *Supervisor) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

func (s *Supervisor) fatalf(name string, critical bool, format string, args ...any) {
	why := fmt.Sprintf(format, args...)
	s.event(Event{Name: name, Kind: Fatal, Why: why})
	s.fatal.Do(func() {
		if s.opt.OnFatal != nil {
			// Its own goroutine: OnFatal usually calls Stop, which waits
			// for this supervise loop to end.
			go s.opt.OnFatal(why, critical)
		}
	})
}

// Stop ends supervision: no more restarts; every child's process group gets
// SIGTERM, and whatever is left after grace gets SIGKILL. It returns the
// names of the services that had to be killed.
func (s *Supervisor) Stop(grace time.Duration) (killed []string) {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		close(s.stopCh)
	}
	children := append([]*child(nil), s.children...)
	for _, c := range children {
		if c.pid > 0 {
			signalGroup(c.pid, unix.SIGTERM)
		}
	}
	s.mu.Unlock()

	deadline := time.After(grace)
	waitAll := func(deadline <-chan time.Time) bool {
		for _, c := range children {
			select {
			case <-c.done:
			case <-deadline:
				return false
			}
		}
		return true
	}
	if waitAll(deadline) {
		return nil
	}
	s.mu.Lock()
	for _, c := range children {
		if c.pid > 0 {
			killed = append(killed, c.Service.Name)
			signalGroup(c.pid, unix.SIGKILL)
		}
	}
	s.mu.Unlock()
	waitAll(time.After(5 * time.Second))
	return killed
}

// signalGroup signals the child's process group (each child leads its own
// session), so helpers it started go too; failing that, the child alone.
func signalGroup(pid int, sig unix.Signal) {
	if err := unix.Kill(-pid, sig); err != nil {
		unix.Kill(pid, sig)
	}
}

func (s *Supervisor) event(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	switch e.Kind {
	case Started:
		s.out.printf("kwyre-init: started %s (pid %d)\n", e.Name, e.Pid)
	case Exited:
		s.out.printf("kwyre-init: %s (pid %d) ended: %v\n", e.Name, e.Pid, e.Exit)
	case StartFailed:
		s.out.printf("kwyre-init: %v\n", e.Err)
	case Restarting:
		s.out.printf("kwyre-init: restarting %s in %s\n", e.Name, e.Delay)
	case Fatal:
		s.out.printf("kwyre-init: %s\n", e.Why)
	}
	if s.opt.OnEvent != nil {
		s.opt.OnEvent(e)
	}
}

func closeAll(fs []*os.File) {
	seen := make(map[*os.File]bool)
	for _, f := range fs {
		if !seen[f] {
			seen[f] = true
			f.Close()
		}
	}
}
