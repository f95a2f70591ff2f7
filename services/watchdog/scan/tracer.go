package scan

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Tracer finds a non-zero TracerPid on any thread of a protected process (the
// supervised children, init and the watchdog itself): a debugger or tracer
// attached through ptrace. Every thread is checked because PTRACE_ATTACH
// targets one thread, not the whole process.
type Tracer struct{}

func (Tracer) Name() string { return "tracer" }

func (Tracer) Scan(env *Env) ([]Finding, error) {
	pids := make([]int, 0, len(env.Protected)+1)
	for pid := range env.Protected {
		pids = append(pids, pid)
	}
	names := map[int]string{env.Self: "watchdog", 1: "init"}
	for pid := range names {
		if _, ok := env.Protected[pid]; !ok && env.Proc(pid) != nil {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	var out []Finding
	for _, pid := range pids {
		taskDir := filepath.Join(env.ProcRoot, strconv.Itoa(pid), "task")
		tids, err := os.ReadDir(taskDir)
		if err != nil {
			if gone(err) {
				continue // exited; init restarts it or reports it
			}
			return out, fmt.Errorf("list threads of pid %d: %w", pid, err)
		}
		for _, t := range tids {
			tracer, err := TracerPID(filepath.Join(taskDir, t.Name(), "status"))
			if err != nil {
				if gone(err) {
					continue
				}
				return out, err
			}
			if tracer == 0 {
				continue
			}
			name := env.Protected[pid]
			if name == "" {
				name = names[pid]
			}
			out = append(out, finding("tracer", fmt.Sprintf("%d/%s<-%d", pid, t.Name(), tracer),
				"%s (pid %d, thread %s) is traced by %s", name, pid, t.Name(), env.Describe(tracer)))
		}
	}
	return out, nil
}

// statusField returns a numeric field of a /proc status file, or -1.
func statusField(statusFile, field string) int {
	n, err := readStatusField(statusFile, field)
	if err != nil {
		return -1
	}
	return n
}

// TracerPID reads the TracerPid line of a /proc status file.
func TracerPID(statusFile string) (int, error) {
	return readStatusField(statusFile, "TracerPid:")
}

func readStatusField(statusFile, field string) (int, error) {
	f, err := os.Open(statusFile)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), field)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("parse %s in %s: %w", field, statusFile, err)
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", statusFile, err)
	}
	return 0, fmt.Errorf("read %s: no %s line", statusFile, field)
}
