// Command testinit is PID 1 of the kernel boot test: it reports what the
// running kernel offers (network links, lockdown, memfd_secret, namespaces,
// packet sockets, /dev/mem) as "kwyre-boottest: key=value" lines on the
// console and powers the machine off.
package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func report(key, value string) {
	fmt.Printf("kwyre-boottest: %s=%s\n", key, value)
}

func mounts() error {
	for _, m := range []struct{ fstype, target string }{
		{"proc", "/proc"},
		{"sysfs", "/sys"},
		{"securityfs", "/sys/kernel/security"},
		{"devtmpfs", "/dev"},
	} {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.target, err)
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// links lists the network interfaces the kernel created.
func links() string {
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return "error: " + err.Error()
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// virtioNet describes the virtio network card, so the test knows one was
// there for a driver to claim: the PCI function (bound to the virtio-pci
// transport) and the virtio device on it (type 1 = network), whose driver
// would be virtio_net.
func virtioNet() string {
	devs, err := filepath.Glob("/sys/bus/pci/devices/*")
	if err != nil {
		return "error: " + err.Error()
	}
	pci := ""
	for _, d := range devs {
		vendor, _ := os.ReadFile(filepath.Join(d, "vendor"))
		device, _ := os.ReadFile(filepath.Join(d, "device"))
		v, id := strings.TrimSpace(string(vendor)), strings.TrimSpace(string(device))
		if v == "0x1af4" && (id == "0x1000" || id == "0x1041") {
			pci = driverOf(d)
		}
	}
	if pci == "" {
		return "absent"
	}
	vdevs, _ := filepath.Glob("/sys/bus/virtio/devices/*")
	for _, d := range vdevs {
		kind, _ := os.ReadFile(filepath.Join(d, "device"))
		if strings.TrimSpace(string(kind)) == "0x0001" {
			return "pci=" + pci + ",virtio=" + driverOf(d)
		}
	}
	return "pci=" + pci + ",virtio=absent"
}

func driverOf(sysdir string) string {
	target, err := os.Readlink(filepath.Join(sysdir, "driver"))
	if err != nil {
		return "none"
	}
	return filepath.Base(target)
}

func errname(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

func memfdSecret() string {
	fd, _, errno := unix.Syscall(unix.SYS_MEMFD_SECRET, 0, 0, 0)
	if errno != 0 {
		return errname(errno)
	}
	unix.Close(int(fd))
	return "ok"
}

// inNamespace starts this program again (as "child", which exits at once)
// in a new namespace of the given kind. clone(2) is used because unshare(2)
// refuses CLONE_NEWUSER in a multi-threaded process, which every Go program is.
func inNamespace(flag uintptr) string {
	cmd := exec.Command("/proc/self/exe", "child")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flag}
	err := cmd.Run()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	if err != nil {
		return err.Error()
	}
	return "ok"
}

func packetSocket() string {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err == nil {
		unix.Close(fd)
	}
	return errname(err)
}

func exists(path string) string {
	if _, err := os.Stat(path); err != nil {
		return "no"
	}
	return "yes"
}

// loadModules tries every /modules/*.ko the test packed, in name order, and
// reports each result as module_<file>=ok or the errno.
func loadModules() {
	mods, err := filepath.Glob("/modules/*.ko")
	if err != nil {
		report("error", "glob /modules: "+err.Error())
		return
	}
	for _, m := range mods {
		key := "module_" + strings.TrimSuffix(filepath.Base(m), ".ko")
		f, err := os.Open(m)
		if err != nil {
			report(key, err.Error())
			continue
		}
		report(key, errname(unix.FinitModule(int(f.Fd()), "", 0)))
		f.Close()
	}
}

// kernelOption reads one option from the running kernel's /proc/config.gz:
// its value, "n" when not set, "absent", or the error.
func kernelOption(name string) string {
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		return "error: " + err.Error()
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "error: " + err.Error()
	}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		line := sc.Text()
		if line == "# "+name+" is not set" {
			return "n"
		}
		if v, ok := strings.CutPrefix(line, name+"="); ok {
			return v
		}
	}
	if err := sc.Err(); err != nil {
		return "error: " + err.Error()
	}
	return "absent"
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		return
	}
	if err := mounts(); err != nil {
		report("error", err.Error())
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		report("release", unix.ByteSliceToString(uts.Release[:]))
	}
	report("links", links())
	report("virtio-net", virtioNet())
	lockdown, err := os.ReadFile("/sys/kernel/security/lockdown")
	if err != nil {
		report("lockdown", "error: "+err.Error())
	} else {
		report("lockdown", strings.TrimSpace(string(lockdown)))
	}
	report("memfd_secret", memfdSecret())
	report("netns", inNamespace(unix.CLONE_NEWNET))
	report("userns", inNamespace(unix.CLONE_NEWUSER))
	report("packet_socket", packetSocket())
	report("dev_mem", exists("/dev/mem"))
	report("proc_kcore", exists("/proc/kcore"))
	// The knobs init refuses to boot without.
	report("sysctl_ptrace_scope", exists("/proc/sys/kernel/yama/ptrace_scope"))
	report("sysctl_suid_dumpable", exists("/proc/sys/fs/suid_dumpable"))
	report("config_netdevices", kernelOption("CONFIG_NETDEVICES"))
	report("config_net", kernelOption("CONFIG_NET"))
	loadModules()
	report("done", "yes")
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		report("error", "power off: "+err.Error())
	}
	os.Exit(1) // PID 1 exiting panics the kernel, and panic=-1 with -no-reboot ends QEMU
}
