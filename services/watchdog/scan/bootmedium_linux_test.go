package scan

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"golang.org/x/sys/unix"
)

// A loop device stands in for the USB stick: the test creates it through
// /dev/loop-control and removes it again, which makes the kernel send a real
// "remove" uevent for a block device.
func TestBootMediumRemoval(t *testing.T) {
	requireRoot(t)
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no loop devices: %v", err)
	}
	defer unix.Close(ctl)
	n := -1
	for i := 4000 + os.Getpid()%1000; i < 6000; i++ {
		if _, err := os.Stat(fmt.Sprintf("/sys/class/block/loop%d", i)); os.IsNotExist(err) {
			n = i
			break
		}
	}
	if n < 0 {
		t.Skip("no free loop number")
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(ctl), unix.LOOP_CTL_ADD, uintptr(n)); errno != 0 {
		t.Fatalf("add loop%d: %v", n, errno)
	}
	name := fmt.Sprintf("loop%d", n)
	removed := false
	remove := func() {
		if !removed {
			removed = true
			if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(ctl), unix.LOOP_CTL_REMOVE, uintptr(n)); errno != 0 {
				t.Errorf("remove %s: %v", name, errno)
			}
		}
	}
	defer remove()
	waitFor(t, func() bool { _, err := os.Stat("/sys/class/block/" + name); return err == nil })

	b, err := NewBootMedium(name, "/sys")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.present {
		t.Fatalf("%s not seen in sysfs", name)
	}
	if got, err := b.Scan(nil); err != nil || len(got) != 0 {
		t.Fatalf("before removal: %v, %v", got, err)
	}

	remove()
	select {
	case <-b.Wake():
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after the remove uevent")
	}
	// The wake-up came from the uevent, so its finding is there at once.
	got, err := b.Scan(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(matching(got, "boot medium "+name+" was removed (kernel uevent)")) != 1 {
		t.Fatalf("after the wake-up: %v", got)
	}
	want := map[string]bool{
		"boot medium " + name + " was removed (kernel uevent)":   false,
		"boot medium " + name + " is gone from /sys/class/block": false,
	}
	waitFor(t, func() bool { got, _ = b.Scan(nil); return len(got) == 2 })
	for _, f := range got {
		if _, ok := want[f.What]; !ok || !f.Immediate || f.Scanner != "boot-medium" {
			t.Errorf("unexpected finding %+v", f)
		}
		want[f.What] = true
	}
	for w, seen := range want {
		if !seen {
			t.Errorf("missing finding %q", w)
		}
	}
}

func TestBootMediumMatch(t *testing.T) {
	b := &BootMedium{dev: "sda1", disk: "sda"}
	ev := func(action, subsystem, devpath, devname string) map[string]string {
		msg := fmt.Sprintf("%s@%s\x00ACTION=%s\x00DEVPATH=%s\x00SUBSYSTEM=%s\x00DEVNAME=%s\x00SEQNUM=1",
			action, devpath, action, devpath, subsystem, devname)
		return ParseUevent([]byte(msg))
	}
	const usb = "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/host0/target0:0:0/0:0:0:0/block/sda"
	tests := []struct {
		name string
		ev   map[string]string
		want string
	}{
		{"boot partition removed", ev("remove", "block", usb+"/sda1", "sda1"), "sda1"},
		{"its disk removed", ev("remove", "block", usb, "sda"), "sda"},
		{"another partition of the disk", ev("remove", "block", usb+"/sda2", "sda2"), "sda2"},
		{"another disk", ev("remove", "block", "/devices/virtual/block/sdb", "sdb"), ""},
		{"similar name", ev("remove", "block", "/devices/x/block/sdaa", "sdaa"), ""},
		{"added, not removed", ev("add", "block", usb, "sda"), ""},
		{"not a block device", ev("remove", "usb", "/devices/pci0000:00/usb1/1-1", "bus/usb/001/002"), ""},
		{"no DEVNAME", ev("remove", "block", usb, ""), "sda"},
	}
	for _, tc := range tests {
		got, ok := b.match(tc.ev)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
}

func TestParseUevent(t *testing.T) {
	ev := ParseUevent([]byte("remove@/devices/virtual/block/loop7\x00ACTION=remove\x00DEVPATH=/devices/virtual/block/loop7\x00SUBSYSTEM=block\x00MAJOR=7\x00MINOR=7\x00DEVNAME=loop7\x00DEVTYPE=disk\x00SEQNUM=4242\x00"))
	want := map[string]string{"ACTION": "remove", "DEVPATH": "/devices/virtual/block/loop7", "SUBSYSTEM": "block",
		"MAJOR": "7", "MINOR": "7", "DEVNAME": "loop7", "DEVTYPE": "disk", "SEQNUM": "4242"}
	if len(ev) != len(want) {
		t.Fatalf("got %v", ev)
	}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("%s = %q, want %q", k, ev[k], v)
		}
	}
}

func TestNewBootMediumNames(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, "sys")
	// A fake sysfs: class/block/sdz1 -> devices/.../block/sdz/sdz1 (a partition).
	part := filepath.Join(sys, "devices", "usb", "block", "sdz", "sdz1")
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(part, "partition"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(sys, "class", "block"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(part, filepath.Join(sys, "class", "block", "sdz1")); err != nil {
		t.Fatal(err)
	}
	// A /dev/disk/by-partlabel style link to the device node.
	node := filepath.Join(dir, "sdz1")
	if err := os.WriteFile(node, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	byLabel := filepath.Join(dir, "ESP")
	if err := os.Symlink(node, byLabel); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"sdz1", byLabel} {
		b, err := NewBootMedium(in, sys)
		if err != nil {
			t.Fatal(err)
		}
		if b.dev != "sdz1" || b.disk != "sdz" || !b.present {
			t.Errorf("%s: dev %q disk %q present %v", in, b.dev, b.disk, b.present)
		}
		b.Close()
	}
	if _, err := NewBootMedium(filepath.Join(dir, "missing"), sys); err == nil || !strings.Contains(err.Error(), "boot device") {
		t.Errorf("missing device path: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

// The appliance names its boot partition by GPT name. A GPT image on a loop
// device with partition scanning stands in for the stick; detaching it
// removes the partition, as pulling the stick does.
func TestBootMediumPartitionByNameDetached(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup not installed")
	}
	name := fmt.Sprintf("kwyre-wd-%d", os.Getpid())
	img := filepath.Join(t.TempDir(), "stick.img")
	d, err := diskfs.Create(img, 8<<20, diskfs.SectorSize512)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Partition(&gpt.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true,
		Partitions: []*gpt.Partition{{Index: 1, Start: 2048, End: 8191, Type: gpt.LinuxFilesystem, Name: name}}}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	out, err := exec.Command("losetup", "-f", "-P", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("losetup: %v %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	detached := false
	detach := func() {
		if !detached {
			detached = true
			if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
				t.Errorf("detach %s: %v %s", loop, err, out)
			}
		}
	}
	defer detach()
	part := filepath.Base(loop) + "p1"
	// losetup -P scans the table before it returns; give udev-less sysfs a
	// moment, then conclude the kernel cannot read GPT.
	for i := 0; ; i++ {
		if _, err := os.Stat("/sys/class/block/" + part); err == nil {
			break
		}
		if i == 40 {
			t.Skipf("kernel found no partition on %s: built without CONFIG_EFI_PARTITION?", loop)
		}
		time.Sleep(50 * time.Millisecond)
	}

	b, err := NewBootMedium("partname:"+name, "/sys")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.dev != part || b.disk != filepath.Base(loop) || !b.present {
		t.Fatalf("resolved to dev %q disk %q present %v; want %s on %s", b.dev, b.disk, b.present, part, loop)
	}
	if got, err := b.Scan(nil); err != nil || len(got) != 0 {
		t.Fatalf("before detaching: %v, %v", got, err)
	}
	detach()
	select {
	case <-b.Wake():
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after detaching")
	}
	got, err := b.Scan(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(matching(got, "boot medium "+part+" was removed (kernel uevent)")) != 1 {
		t.Fatalf("partition removal not found: %v", got)
	}
}

func TestPartitionByName(t *testing.T) {
	sys := t.TempDir()
	for dev, uevent := range map[string]string{
		"vda":  "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n",
		"vda1": "MAJOR=254\nMINOR=1\nDEVNAME=vda1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=ESP\n",
		"vda2": "MAJOR=254\nMINOR=2\nDEVNAME=vda2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=kwyre-model\n",
		"sdb1": "DEVNAME=sdb1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=twice\n",
		"sdc1": "DEVNAME=sdc1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=twice\n",
	} {
		if err := os.MkdirAll(filepath.Join(sys, dev), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, dev, "uevent"), []byte(uevent), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ name, want, err string }{
		{"ESP", "vda1", ""},
		{"kwyre-model", "vda2", ""},
		{"kwyre", "", "no partition named"},
		{"twice", "", "ambiguous"},
		{"", "", "empty"},
	}
	for _, tc := range tests {
		got, err := PartitionByName(sys, tc.name)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: got %q, %v; want %q, error %q", tc.name, got, err, tc.want, tc.err)
		}
	}
}
