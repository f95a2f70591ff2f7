package scan

import (
	"fmt"
	"strconv"
	"strings"
)

// FDs finds open file descriptors that let a process observe others: perf
// events, BPF objects (maps, programs, links, iterators), another process's or
// the machine's memory (/proc/PID/mem, /dev/mem, /proc/kcore), and NVIDIA
// device nodes in any process but the inference service, which alone may use
// the GPU.
type FDs struct{}

func (FDs) Name() string { return "fds" }

func (FDs) Scan(env *Env) ([]Finding, error) {
	var out []Finding
	var blind []string
	for _, p := range env.Procs {
		if p.Kernel {
			continue
		}
		targets, err := p.FDTargets()
		if err != nil {
			if !gone(err) {
				// Without CAP_SYS_PTRACE another uid's fds are hidden:
				// say so rather than report a clean process.
				blind = append(blind, strconv.Itoa(p.PID))
			}
			continue
		}
		seen := map[string]bool{}
		for _, t := range targets {
			kind := FDKind(t)
			if kind == "" || seen[kind] {
				continue
			}
			if kind == "nvidia" && (p.PID == env.InferencePID || p.PID == env.Self) {
				continue // the watchdog's own NVML handle is how it checks the GPU
			}
			seen[kind] = true
			out = append(out, finding("fds", fmt.Sprintf("%d %s %s", p.PID, exeOrComm(p), kind),
				"pid %d (%s) holds a %s file descriptor (%s)", p.PID, p.Name(), kind, t))
		}
	}
	if len(blind) > 0 {
		return out, fmt.Errorf("cannot read the fds of %d processes (pids %s)", len(blind), shortList(blind, 10))
	}
	return out, nil
}

// shortList joins at most n items, saying how many more there were.
func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// FDKind classifies an fd's link target: "perf", "bpf", "memory", "nvidia",
// or "".
func FDKind(target string) string {
	switch {
	case target == "/dev/mem" || target == "/dev/kmem" || target == "/dev/port" || target == "/proc/kcore":
		return "memory"
	case procMem(target):
		return "memory"
	case target == "anon_inode:[perf_event]":
		return "perf"
	case strings.HasPrefix(target, "anon_inode:bpf") || strings.HasPrefix(target, "anon_inode:[bpf"):
		return "bpf"
	case strings.HasPrefix(target, "/dev/nvidia"):
		return "nvidia"
	}
	return ""
}

// procMem matches /proc/PID/mem and /proc/PID/task/TID/mem.
func procMem(target string) bool {
	rest, ok := strings.CutPrefix(target, "/proc/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	digits := func(s string) bool {
		return s != "" && strings.Trim(s, "0123456789") == ""
	}
	switch len(parts) {
	case 2:
		return digits(parts[0]) && parts[1] == "mem"
	case 4:
		return digits(parts[0]) && parts[1] == "task" && digits(parts[2]) && parts[3] == "mem"
	}
	return false
}
