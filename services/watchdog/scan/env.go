package scan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/procfs"
)

// pfKthread is PF_KTHREAD in /proc/PID/stat's flags: the task is a kernel thread.
const pfKthread = 0x00200000

// Env is one scan's view of the system: the process table read once and shared
// by every scanner, plus what the supervisor says about its children.
type Env struct {
	FS       procfs.FS
	ProcRoot string // where FS is mounted, e.g. /proc
	Self     int    // the watchdog's own pid

	// Protected maps the pids the appliance protects (init's children, or the
	// -protect list in development) to a name.
	Protected map[int]string
	// Supervised is true when Protected came from init's supervised.json, so
	// "not started by init" can be judged.
	Supervised   bool
	InferencePID int

	Procs []*Process
	byPID map[int]*Process

	netns      []NetNS
	netnsDone  bool
	netnsBlind []string // pids whose namespace could not be read
	sockOwners map[uint64]int
}

// Process is one process (thread group) of the snapshot.
type Process struct {
	PID, PPID int
	Comm      string
	Exe       string // target of /proc/PID/exe; "" for kernel threads
	Kernel    bool   // a kernel thread

	proc    procfs.Proc
	fds     []string
	fdsErr  error
	fdsDone bool
}

// Name is the process's executable base name, or its comm when exe is unreadable.
func (p *Process) Name() string {
	if p.Exe != "" {
		return filepath.Base(strings.TrimSuffix(p.Exe, " (deleted)"))
	}
	return p.Comm
}

// FDTargets returns the targets of the process's open file descriptors, read
// once per scan.
func (p *Process) FDTargets() ([]string, error) {
	if !p.fdsDone {
		p.fds, p.fdsErr = p.proc.FileDescriptorTargets()
		p.fdsDone = true
	}
	return p.fds, p.fdsErr
}

// NewEnv reads the process table under procRoot.
func NewEnv(procRoot string) (*Env, error) {
	pfs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("open procfs %s: %w", procRoot, err)
	}
	all, err := pfs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("list processes in %s: %w", procRoot, err)
	}
	env := &Env{
		FS:        pfs,
		ProcRoot:  procRoot,
		Self:      os.Getpid(),
		Protected: map[int]string{},
		byPID:     make(map[int]*Process, len(all)),
	}
	for _, pr := range all {
		st, err := pr.Stat()
		if err != nil {
			if gone(err) {
				continue
			}
			return nil, fmt.Errorf("read %s/%d/stat: %w", procRoot, pr.PID, err)
		}
		p := &Process{PID: pr.PID, PPID: st.PPID, Comm: st.Comm, proc: pr,
			Kernel: st.Flags&pfKthread != 0}
		if !p.Kernel {
			exe, err := pr.Executable()
			if err != nil && !gone(err) {
				// Unreadable exe: keep the process with its comm; the name
				// checks still apply.
				exe = ""
			}
			p.Exe = exe
			// The kernel shows a zombie with no exe; keep its comm.
		}
		env.Procs = append(env.Procs, p)
		env.byPID[p.PID] = p
	}
	sort.Slice(env.Procs, func(i, j int) bool { return env.Procs[i].PID < env.Procs[j].PID })
	return env, nil
}

// Proc returns the snapshot's process pid, or nil.
func (e *Env) Proc(pid int) *Process { return e.byPID[pid] }

// NetNS is one network namespace and a task directory through which its
// /net files can be read.
type NetNS struct {
	Inode uint64
	Dir   string // e.g. /proc/123/task/125
	PID   int
}

// NetNamespaces lists every network namespace some task lives in. Threads are
// walked too: a thread can setns into a namespace its process leader is not in.
func (e *Env) NetNamespaces() []NetNS {
	if e.netnsDone {
		return e.netns
	}
	e.netnsDone = true
	seen := map[uint64]bool{}
	for _, p := range e.Procs {
		if p.Kernel {
			continue // kernel threads live in the initial namespace
		}
		taskDir := filepath.Join(e.ProcRoot, strconv.Itoa(p.PID), "task")
		tids, err := os.ReadDir(taskDir)
		if err != nil {
			continue // gone since the snapshot
		}
		for _, t := range tids {
			dir := filepath.Join(taskDir, t.Name())
			ino, err := nsInode(filepath.Join(dir, "ns", "net"))
			if err != nil {
				if !gone(err) {
					e.netnsBlind = append(e.netnsBlind, strconv.Itoa(p.PID)+"/"+t.Name())
				}
				continue
			}
			if seen[ino] {
				continue
			}
			seen[ino] = true
			e.netns = append(e.netns, NetNS{Inode: ino, Dir: dir, PID: p.PID})
		}
	}
	return e.netns
}

// netnsBlindErr says which tasks' namespaces NetNamespaces could not read
// (another uid's, without CAP_SYS_PTRACE), or nil.
func (e *Env) netnsBlindErr() error {
	e.NetNamespaces()
	if len(e.netnsBlind) == 0 {
		return nil
	}
	return fmt.Errorf("cannot read the network namespace of %d tasks (%s)", len(e.netnsBlind), shortList(e.netnsBlind, 10))
}

// SelfNetNS is the inode of the watchdog's own network namespace.
func (e *Env) SelfNetNS() (uint64, error) {
	return nsInode(filepath.Join(e.ProcRoot, "thread-self", "ns", "net"))
}

// SocketOwner returns the pid holding socket inode ino, or 0.
func (e *Env) SocketOwner(ino uint64) int {
	if e.sockOwners == nil {
		e.sockOwners = map[uint64]int{}
		for _, p := range e.Procs {
			if p.Kernel {
				continue
			}
			fds, _ := p.FDTargets()
			for _, t := range fds {
				if n, ok := strings.CutPrefix(t, "socket:["); ok {
					if v, err := strconv.ParseUint(strings.TrimSuffix(n, "]"), 10, 64); err == nil {
						e.sockOwners[v] = p.PID
					}
				}
			}
		}
	}
	return e.sockOwners[ino]
}

// Describe names a process for a finding: "pid 123 (gdb)".
// A thread id (ptrace reports the tracing thread) is named by its process.
func (e *Env) Describe(pid int) string {
	if p := e.byPID[pid]; p != nil {
		return fmt.Sprintf("pid %d (%s)", pid, p.Name())
	}
	if tgid := statusField(filepath.Join(e.ProcRoot, strconv.Itoa(pid), "status"), "Tgid:"); tgid > 0 && tgid != pid {
		if p := e.byPID[tgid]; p != nil {
			return fmt.Sprintf("pid %d (%s, thread %d)", tgid, p.Name(), pid)
		}
		return fmt.Sprintf("pid %d (thread %d)", tgid, pid)
	}
	if pid == 0 {
		return "no process"
	}
	return fmt.Sprintf("pid %d", pid)
}

func nsInode(link string) (uint64, error) {
	t, err := os.Readlink(link)
	if err != nil {
		return 0, err
	}
	// "net:[4026531840]"
	_, n, ok := strings.Cut(t, ":[")
	if !ok {
		return 0, fmt.Errorf("parse namespace link %s: %q", link, t)
	}
	v, err := strconv.ParseUint(strings.TrimSuffix(n, "]"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse namespace link %s: %w", link, err)
	}
	return v, nil
}

// gone reports whether err means the process exited while we read it.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}
