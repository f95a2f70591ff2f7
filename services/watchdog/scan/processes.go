package scan

import (
	"strconv"
	"strings"
)

// Tools are debuggers, tracers, memory and traffic analysers: seeing one run
// means someone is inspecting the machine. Matched on the executable's base
// name and on comm (the kernel's 15-byte task name).
var Tools = map[string]bool{
	"gdb": true, "gdbserver": true, "gdb-multiarch": true, "gcore": true,
	"lldb": true, "lldb-server": true, "lldb-argdumper": true,
	"strace": true, "ltrace": true, "ptrace": true,
	"perf": true, "trace-cmd": true, "bpftrace": true, "bpftool": true,
	"stap": true, "staprun": true, "stapio": true, "sysdig": true,
	"tcpdump": true, "tshark": true, "wireshark": true, "dumpcap": true,
	"termshark": true, "ngrep": true, "tcpflow": true, "ettercap": true,
	"netsniff-ng": true, "ssldump": true, "mitmproxy": true, "mitmdump": true,
	"frida": true, "frida-server": true, "frida-inject": true, "frida-trace": true,
	"valgrind": true, "radare2": true, "r2": true, "rr": true, "ghidra": true,
	"volatility": true, "avml": true, "lime": true, "memdump": true,
	"scanmem": true, "gameconqueror": true, "pwndbg": true, "edb": true,
}

// toolPrefixes catch renamed helpers of the same tools (valgrind's tool
// binaries, frida's helpers, versioned gdb).
var toolPrefixes = []string{"frida-", "memcheck-", "callgrind-", "massif-", "helgrind-",
	"drd-", "gdb-", "lldb-", "bpftrace", "wireshark", "tshark", "tcpdump"}

// IsTool reports whether name (an exe base name or comm) is a known
// inspection tool.
func IsTool(name string) bool {
	if Tools[name] {
		return true
	}
	for _, p := range toolPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Processes finds known inspection tools in every mode and, in the appliance
// (when init's list of children is known), any process init did not start.
type Processes struct{}

func (Processes) Name() string { return "processes" }

func (Processes) Scan(env *Env) ([]Finding, error) {
	var out []Finding
	for _, p := range env.Procs {
		if p.Kernel || p.PID == env.Self {
			continue
		}
		key := procKey(p)
		if name := p.Name(); IsTool(name) || IsTool(p.Comm) {
			tool := name
			if !IsTool(name) {
				tool = p.Comm
			}
			out = append(out, finding("processes", "tool "+key,
				"inspection tool %s running as pid %d (%s)", tool, p.PID, p.Exe))
			continue
		}
		if env.Supervised && !legitimate(env, p) {
			out = append(out, finding("processes", "foreign "+key,
				"pid %d (%s, parent %d) was not started by init", p.PID, exeOrComm(p), p.PPID))
		}
	}
	return out, nil
}

// legitimate says whether p belongs to the appliance: init itself, a child init
// supervises, init between fork and exec of a child, or a descendant a
// supervised child runs from its own executable (a re-exec or fork of itself).
func legitimate(env *Env, p *Process) bool {
	if p.PID == 1 || p.PID == env.Self {
		return true
	}
	if _, ok := env.Protected[p.PID]; ok {
		return true
	}
	init := env.Proc(1)
	if p.PPID == 1 && init != nil && p.Exe != "" && p.Exe == init.Exe {
		return true // init forked, not yet exec'd
	}
	// Walk up: a descendant of a supervised child with that child's exe.
	seen := map[int]bool{}
	for cur := p; cur != nil && !seen[cur.PID]; cur = env.Proc(cur.PPID) {
		seen[cur.PID] = true
		parent := env.Proc(cur.PPID)
		if parent == nil || parent.Exe != p.Exe || p.Exe == "" {
			return false
		}
		if _, ok := env.Protected[parent.PID]; ok {
			return true
		}
	}
	return false
}

func procKey(p *Process) string {
	return strconv.Itoa(p.PID) + " " + exeOrComm(p)
}

func exeOrComm(p *Process) string {
	if p.Exe != "" {
		return p.Exe
	}
	return "[" + p.Comm + "]"
}
