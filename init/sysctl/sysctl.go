// Package sysctl sets the kernel's hardening knobs through /proc/sys and
// checks that each took.
package sysctl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Setting is one knob.
type Setting struct {
	Key   string // dotted, as sysctl(8) names it
	Value string
	// Required: a kernel without this knob lacks the protection it would
	// give (Yama's ptrace_scope), so boot must stop. Knobs that are missing
	// only because the feature itself is compiled out (no BPF, no user
	// namespaces) are not required.
	Required bool
	Why      string
}

// Hardening is what init sets at step 1, before any service runs.
var Hardening = []Setting{
	{"kernel.yama.ptrace_scope", "3", true, "L6: nobody, root included, may attach to or read another process"},
	{"kernel.kptr_restrict", "2", false, "hide kernel addresses"},
	{"kernel.dmesg_restrict", "1", false, "kernel log for CAP_SYSLOG only"},
	{"kernel.perf_event_paranoid", "3", false, "no perf events for unprivileged users"},
	{"kernel.unprivileged_bpf_disabled", "1", false, "no BPF for unprivileged users"},
	{"user.max_user_namespaces", "0", false, "no user namespaces"},
	{"fs.suid_dumpable", "0", true, "no core dumps of privileged processes"},
	{"fs.protected_symlinks", "1", false, "no symlink games in shared folders"},
	{"fs.protected_hardlinks", "1", false, "no hardlink games in shared folders"},
	{"kernel.kexec_load_disabled", "1", false, "no loading of another kernel"},
	{"kernel.sysrq", "0", false, "no magic SysRq from the keyboard"},
}

// LockModules is set once the image's modules are loaded (step 3).
var LockModules = []Setting{
	{"kernel.modules_disabled", "1", false, "no module loading after boot (missing: kernel without modules)"},
}

// Outcome is what happened to one setting.
type Outcome struct {
	Setting
	Missing bool // the kernel has no such knob
}

// Apply writes each setting under root ("/proc/sys" in the appliance) and
// reads it back. A required knob that is missing, or any knob that cannot
// be set or reads back differently, is an error naming it; a missing knob
// that is not required is returned as an Outcome with Missing set, for the
// caller to report.
func Apply(root string, settings []Setting) ([]Outcome, error) {
	var out []Outcome
	var errs []error
	for _, s := range settings {
		p := filepath.Join(root, strings.ReplaceAll(s.Key, ".", "/"))
		if err := write(p, s.Value); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				out = append(out, Outcome{Setting: s, Missing: true})
				if s.Required {
					errs = append(errs, fmt.Errorf("%s: not in this kernel, and it guards %s", s.Key, s.Why))
				}
				continue
			}
			errs = append(errs, fmt.Errorf("set %s=%s: %w", s.Key, s.Value, err))
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read back %s: %w", s.Key, err))
			continue
		}
		if g := strings.TrimSpace(string(got)); g != s.Value {
			errs = append(errs, fmt.Errorf("%s reads %q after writing %q", s.Key, g, s.Value))
			continue
		}
		out = append(out, Outcome{Setting: s})
	}
	return out, errors.Join(errs...)
}

// Missing returns the keys of the outcomes whose knob was missing.
func Missing(out []Outcome) []string {
	var keys []string
	for _, o := range out {
		if o.Missing {
			keys = append(keys, o.Key)
		}
	}
	return keys
}

// write writes value to an existing knob; it never creates a file.
func write(p, value string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
