package scan

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// BootMedium watches the block device the appliance booted from. Like Tails,
// pulling the stick wipes and powers off: a kernel "remove" uevent for the
// disk or one of its partitions is a finding confirmed at once. Each scan also
// checks that the device still exists in sysfs, in case an event was lost.
type BootMedium struct {
	dev      string // as given, e.g. "sda1"
	disk     string // the whole disk, e.g. "sda"
	sysBlock string // <sysfs>/class/block
	present  bool   // the device existed when watching started

	file *os.File
	wake chan struct{}

	mu      sync.Mutex
	removed []string // devices the kernel said were removed
	lost    bool     // the socket overran: events may be missing
	done    chan struct{}
}

// NewBootMedium starts listening to kernel uevents for device: a name such as
// "sda", a path such as /dev/sda1 or /dev/disk/by-partlabel/ESP, or
// "partname:NAME", the partition whose GPT name is NAME (found through sysfs,
// so it works without udev). sysRoot is normally /sys.
func NewBootMedium(device, sysRoot string) (*BootMedium, error) {
	dev := device
	if name, ok := strings.CutPrefix(dev, "partname:"); ok {
		var err error
		if dev, err = PartitionByName(filepath.Join(sysRoot, "class", "block"), name); err != nil {
			return nil, fmt.Errorf("boot device %s: %w", device, err)
		}
	} else if strings.HasPrefix(dev, "/") {
		real, err := filepath.EvalSymlinks(dev)
		if err != nil {
			return nil, fmt.Errorf("boot device %s: %w", device, err)
		}
		dev = real
	}
	dev = filepath.Base(dev)
	if dev == "" || dev == "." || dev == "/" {
		return nil, fmt.Errorf("boot device %q: no device name", device)
	}
	b := &BootMedium{dev: dev, disk: dev, sysBlock: filepath.Join(sysRoot, "class", "block"),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	if real, err := filepath.EvalSymlinks(filepath.Join(b.sysBlock, dev)); err == nil {
		b.present = true
		// A partition's sysfs directory sits inside its disk's.
		if _, err := os.Stat(filepath.Join(real, "partition")); err == nil {
			b.disk = filepath.Base(filepath.Dir(real))
		}
	}

	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK,
		unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent socket: %w", err)
	}
	// A larger buffer keeps a burst of uevents (a hub unplugged) from overrunning.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind uevent socket: %w", err)
	}
	b.file = os.NewFile(uintptr(fd), "uevent")
	go b.listen()
	return b, nil
}

func (*BootMedium) Name() string { return "boot-medium" }

// Wake fires when a uevent says the boot medium went away, so the watchdog
// scans at once instead of at the next tick.
func (b *BootMedium) Wake() <-chan struct{} { return b.wake }

// Close stops listening.
func (b *BootMedium) Close() error {
	err := b.file.Close()
	<-b.done
	return err
}

func (b *BootMedium) Scan(*Env) ([]Finding, error) {
	b.mu.Lock()
	removed := append([]string(nil), b.removed...)
	lost := b.lost
	b.mu.Unlock()
	var out []Finding
	for _, d := range removed {
		out = append(out, Finding{Scanner: "boot-medium", Key: "removed " + d, Immediate: true,
			What: Printable(fmt.Sprintf("boot medium %s was removed (kernel uevent)", d))})
	}
	if b.present {
		if _, err := os.Stat(filepath.Join(b.sysBlock, b.dev)); errors.Is(err, os.ErrNotExist) {
			out = append(out, Finding{Scanner: "boot-medium", Key: "gone " + b.dev, Immediate: true,
				What: Printable(fmt.Sprintf("boot medium %s is gone from %s", b.dev, b.sysBlock))})
		}
	}
	if lost {
		return out, errors.New("uevent socket overran; relying on the sysfs check")
	}
	return out, nil
}

func (b *BootMedium) listen() {
	defer close(b.done)
	rc, err := b.file.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 64*1024)
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			if rerr == unix.ENOBUFS {
				b.mu.Lock()
				b.lost = true
				b.mu.Unlock()
				continue
			}
			return
		}
		// Only the kernel (port 0) speaks for the hardware.
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue
		}
		if d, ok := b.match(ParseUevent(buf[:n])); ok {
			b.mu.Lock()
			b.removed = append(b.removed, d)
			b.mu.Unlock()
			select {
			case b.wake <- struct{}{}:
			default:
			}
		}
	}
}

// match says whether a uevent removes the boot device, its disk or another
// partition of that disk.
func (b *BootMedium) match(ev map[string]string) (string, bool) {
	if ev["ACTION"] != "remove" || ev["SUBSYSTEM"] != "block" {
		return "", false
	}
	name := ev["DEVNAME"]
	if name == "" {
		name = filepath.Base(ev["DEVPATH"])
	}
	name = filepath.Base(name)
	if name == b.dev || name == b.disk {
		return name, true
	}
	if strings.HasSuffix(filepath.Dir(ev["DEVPATH"]), "/"+b.disk) {
		return name, true // a partition of the boot disk
	}
	return "", false
}

// PartitionByName finds the block device (e.g. "vda1") whose GPT partition
// name is name, from the PARTNAME of each device's uevent file under sysBlock.
func PartitionByName(sysBlock, name string) (string, error) {
	if name == "" {
		return "", errors.New("empty partition name")
	}
	devs, err := os.ReadDir(sysBlock)
	if err != nil {
		return "", fmt.Errorf("list block devices: %w", err)
	}
	var found []string
	for _, d := range devs {
		b, err := os.ReadFile(filepath.Join(sysBlock, d.Name(), "uevent"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l == "PARTNAME="+name {
				found = append(found, d.Name())
			}
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no partition named %q in %s", name, sysBlock)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("partition name %q is ambiguous: %s", name, strings.Join(found, ", "))
}

// ParseUevent splits a kernel uevent ("remove@/devices/...\0ACTION=remove\0...")
// into its KEY=value pairs.
func ParseUevent(msg []byte) map[string]string {
	ev := map[string]string{}
	for i, part := range bytes.Split(msg, []byte{0}) {
		if i == 0 {
			continue // "action@devpath" summary
		}
		if k, v, ok := strings.Cut(string(part), "="); ok {
			ev[k] = v
		}
	}
	return ev
}
