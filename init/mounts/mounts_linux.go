// Package mounts mounts the kernel and runtime filesystems init needs, and
// the model partition, always with the most restrictive flags each allows.
package mounts

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"
)

// Mount is one filesystem to mount.
type Mount struct {
	Source string
	Target string // absolute, inside the root
	FSType string
	Flags  uintptr
	Data   string
	Mode   os.FileMode // of the target folder, when init creates it
	Magic  int64       // statfs type once mounted, to skip what is already there
}

const hardened = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// Base are the filesystems of step 1, in order. /dev keeps device nodes
// (no nodev); /dev/pts gets its own instance so no tty outside it is seen.
var Base = []Mount{
	{"proc", "/proc", "proc", hardened, "", 0o555, unix.PROC_SUPER_MAGIC},
	{"sysfs", "/sys", "sysfs", hardened, "", 0o555, unix.SYSFS_MAGIC},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0755", 0o755, unix.TMPFS_MAGIC},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620", 0o755, unix.DEVPTS_SUPER_MAGIC},
	{"tmpfs", "/run", "tmpfs", hardened, "mode=0755,size=64m", 0o755, unix.TMPFS_MAGIC},
	{"tmpfs", "/tmp", "tmpfs", hardened, "mode=1777,size=64m", 0o1777, unix.TMPFS_MAGIC},
}

// Result says what MountAll did with one mount.
type Result struct {
	Target  string
	Skipped bool // already mounted
}

// MountAll mounts each of ms under root ("/" in the appliance), creating
// the target folders. A target that already holds a filesystem of the
// expected type is left alone (the kernel may have mounted /dev itself).
func MountAll(root string, ms []Mount) ([]Result, error) {
	var out []Result
	for _, m := range ms {
		target := filepath.Join(root, m.Target)
		if err := os.MkdirAll(target, m.Mode|0o100); err != nil {
			return out, fmt.Errorf("create %s: %w", target, err)
		}
		if mounted, err := isMountedAs(target, m.Magic); err != nil {
			return out, err
		} else if mounted {
			out = append(out, Result{Target: m.Target, Skipped: true})
			continue
		}
		if _, err := mount.Mount(m.Source, target, m.FSType, m.Data, m.Flags); err != nil {
			return out, fmt.Errorf("mount %s: %w", m.Target, err)
		}
		out = append(out, Result{Target: m.Target})
	}
	return out, nil
}

// isMountedAs reports whether target is a mount point whose filesystem has
// the given magic.
func isMountedAs(target string, magic int64) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Stat(target, &st); err != nil {
		return false, fmt.Errorf("stat %s: %w", target, err)
	}
	if err := unix.Stat(filepath.Dir(target), &parent); err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(target), err)
	}
	if st.Dev == parent.Dev && target != "/" {
		return false, nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(target, &fs); err != nil {
		return false, fmt.Errorf("statfs %s: %w", target, err)
	}
	return int64(fs.Type) == magic, nil
}
