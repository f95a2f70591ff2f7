// Package caps names Linux capabilities, so that the appliance config can
// list them as text ("CAP_SYS_PTRACE") and the supervisor can raise them.
package caps

import (
	"fmt"
	"sort"
	"strings"
)

// names maps each capability name to its number (include/uapi/linux/capability.h).
var names = map[string]uintptr{
	"CAP_CHOWN":              0,
	"CAP_DAC_OVERRIDE":       1,
	"CAP_DAC_READ_SEARCH":    2,
	"CAP_FOWNER":             3,
	"CAP_FSETID":             4,
	"CAP_KILL":               5,
	"CAP_SETGID":             6,
	"CAP_SETUID":             7,
	"CAP_SETPCAP":            8,
	"CAP_LINUX_IMMUTABLE":    9,
	"CAP_NET_BIND_SERVICE":   10,
	"CAP_NET_BROADCAST":      11,
	"CAP_NET_ADMIN":          12,
	"CAP_NET_RAW":            13,
	"CAP_IPC_LOCK":           14,
	"CAP_IPC_OWNER":          15,
	"CAP_SYS_MODULE":         16,
	"CAP_SYS_RAWIO":          17,
	"CAP_SYS_CHROOT":         18,
	"CAP_SYS_PTRACE":         19,
	"CAP_SYS_PACCT":          20,
	"CAP_SYS_ADMIN":          21,
	"CAP_SYS_BOOT":           22,
	"CAP_SYS_NICE":           23,
	"CAP_SYS_RESOURCE":       24,
	"CAP_SYS_TIME":           25,
	"CAP_SYS_TTY_CONFIG":     26,
	"CAP_MKNOD":              27,
	"CAP_LEASE":              28,
	"CAP_AUDIT_WRITE":        29,
	"CAP_AUDIT_CONTROL":      30,
	"CAP_SETFCAP":            31,
	"CAP_MAC_OVERRIDE":       32,
	"CAP_MAC_ADMIN":          33,
	"CAP_SYSLOG":             34,
	"CAP_WAKE_ALARM":         35,
	"CAP_BLOCK_SUSPEND":      36,
	"CAP_AUDIT_READ":         37,
	"CAP_PERFMON":            38,
	"CAP_BPF":                39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// Last is the highest capability number this table knows.
const Last = 40

// Parse returns the number of the capability called name (case-insensitive,
// with or without the "CAP_" prefix).
func Parse(name string) (uintptr, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	v, ok := names[n]
	if !ok {
		return 0, fmt.Errorf("unknown capability %q", name)
	}
	return v, nil
}

// ParseList parses every name in list; the result keeps the list's order.
func ParseList(list []string) ([]uintptr, error) {
	out := make([]uintptr, 0, len(list))
	for _, name := range list {
		v, err := Parse(name)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Name returns the name of capability number c, or "CAP_<n>" for one the
// table does not know.
func Name(c uintptr) string {
	for k, v := range names {
		if v == c {
			return k
		}
	}
	return fmt.Sprintf("CAP_%d", c)
}

// Mask returns the bit mask of the capabilities in list, the form
// /proc/PID/status shows in CapEff/CapAmb.
func Mask(list []uintptr) uint64 {
	var m uint64
	for _, c := range list {
		m |= 1 << c
	}
	return m
}

// Names returns every known capability name, sorted.
func Names() []string {
	out := make([]string, 0, len(names))
	for k := range names {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
