package mounts

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"golang.org/x/sys/unix"
)

func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("mounts tests need root")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// inMountNS runs fn on a thread with a private mount namespace of its own;
// the thread, and with it every mount fn made, goes away afterwards.
func inMountNS(t *testing.T, fn func() error) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its namespace
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			done <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			done <- fmt.Errorf("make / private: %w", err)
			return
		}
		done <- fn()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// mountOptions returns the per-mount options of target from mountinfo.
func mountOptions(target string) (string, string, error) {
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return "", "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 9 && f[4] == target {
			i := 6
			for f[i] != "-" {
				i++
			}
			return f[5], f[i+1], nil
		}
	}
	return "", "", fmt.Errorf("%s not in mountinfo", target)
}

func TestMountAll(t *testing.T) {
	root := t.TempDir()
	inMountNS(t, func() error {
		res, err := MountAll(root, Base)
		if err != nil {
			return err
		}
		for i, r := range res {
			if r.Skipped {
				return fmt.Errorf("%s skipped on first mount", r.Target)
			}
			if r.Target != Base[i].Target {
				return fmt.Errorf("result %d is %s", i, r.Target)
			}
		}
		tests := []struct {
			target, fstype string
			want           []string
			notWant        []string
		}{
			{"/proc", "proc", []string{"nosuid", "nodev", "noexec"}, nil},
			{"/sys", "sysfs", []string{"nosuid", "nodev", "noexec"}, nil},
			{"/dev", "devtmpfs", []string{"nosuid", "noexec"}, []string{"nodev"}},
			{"/dev/pts", "devpts", []string{"nosuid", "noexec"}, nil},
			{"/run", "tmpfs", []string{"nosuid", "nodev", "noexec"}, nil},
			{"/tmp", "tmpfs", []string{"nosuid", "nodev", "noexec"}, nil},
		}
		for _, tt := range tests {
			opts, fstype, err := mountOptions(filepath.Join(root, tt.target))
			if err != nil {
				return err
			}
			if fstype != tt.fstype {
				return fmt.Errorf("%s is %s, want %s", tt.target, fstype, tt.fstype)
			}
			have := "," + opts + ","
			for _, w := range tt.want {
				if !strings.Contains(have, ","+w+",") {
					return fmt.Errorf("%s options %s lack %s", tt.target, opts, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(have, ","+w+",") {
					return fmt.Errorf("%s options %s have %s", tt.target, opts, w)
				}
			}
		}
		if _, err := os.Stat(filepath.Join(root, "proc/self/status")); err != nil {
			return fmt.Errorf("proc not usable: %w", err)
		}
		// A second run finds everything mounted and leaves it alone.
		res, err = MountAll(root, Base)
		if err != nil {
			return err
		}
		for _, r := range res {
			if !r.Skipped {
				return fmt.Errorf("%s mounted twice", r.Target)
			}
		}
		return nil
	})
}

func TestFindPartition(t *testing.T) {
	sys := t.TempDir()
	add := func(dev, uevent string) {
		d := filepath.Join(sys, "class/block", dev)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "uevent"), []byte(uevent), 0o644)
	}
	add("vda", "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\nDISKSEQ=1\n")
	add("vda1", "MAJOR=254\nMINOR=1\nDEVNAME=vda1\nDEVTYPE=partition\nDISKSEQ=1\nPARTN=1\nPARTNAME=ESP\n")
	add("vda2", "MAJOR=254\nMINOR=2\nDEVNAME=vda2\nDEVTYPE=partition\nDISKSEQ=1\nPARTN=2\nPARTNAME=kwyre-model\n")
	tests := []struct {
		name, want, wantErr string
	}{
		{"kwyre-model", "/dev/vda2", ""},
		{"ESP", "/dev/vda1", ""},
		{"kwyre", "", "no partition"},
	}
	for _, tt := range tests {
		got, err := FindPartition(sys, tt.name)
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("FindPartition(%q) = %q, %v", tt.name, got, err)
		}
	}
	add("sdb1", "MAJOR=8\nMINOR=17\nDEVNAME=sdb1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=kwyre-model\n")
	if _, err := FindPartition(sys, "kwyre-model"); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("two partitions: %v", err)
	}
}

// TestModelPartition builds a real GPT disk image with an ext4 partition
// named kwyre-model, attaches it to a loop device, and finds and mounts it
// through the real /sys.
func TestModelPartition(t *testing.T) {
	for _, tool := range []string{"losetup", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	content := filepath.Join(dir, "content")
	os.MkdirAll(content, 0o755)
	os.WriteFile(filepath.Join(content, "model.gguf"), []byte("GGUF test"), 0o644)
	os.WriteFile(filepath.Join(content, "run.sh"), []byte("#!/bin/sh\n"), 0o755)
	fsImg := filepath.Join(dir, "fs.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-d", content, fsImg, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	// A unique name, so that loop devices of other tests cannot collide.
	name := fmt.Sprintf("kwyre-test-%d", time.Now().UnixNano()%1e9)
	diskImg := filepath.Join(dir, "disk.img")
	d, err := diskfs.Create(diskImg, 16<<20, diskfs.SectorSize512)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Partition(&gpt.Table{
		LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true,
		Partitions: []*gpt.Partition{{Index: 1, Start: 2048, End: 2048 + 8<<20/512 - 1, Type: gpt.LinuxFilesystem, Name: name}},
	}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(fsImg)
	if _, err := d.WritePartitionContents(1, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	d.Close()

	loop := losetup(t, "-P", diskImg)
	if _, err := os.Stat(filepath.Join("/sys/class/block", filepath.Base(loop)+"p1")); err != nil {
		time.Sleep(time.Second) // udev-less partition scan is synchronous, but be kind
	}
	if _, err := os.Stat(filepath.Join("/sys/class/block", filepath.Base(loop)+"p1")); err != nil {
		t.Log("this kernel does not parse GPT (no CONFIG_EFI_PARTITION): partition lookup not tested on a real device")
	} else {
		dev, err := WaitPartition("/sys", name, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if dev != loop+"p1" {
			t.Fatalf("found %s, want %sp1", dev, loop)
		}
	}
	if _, err := WaitPartition("/sys", name+"-nope", 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "waited") {
		t.Fatalf("missing partition: %v", err)
	}
	// Mount the filesystem itself through a loop device.
	dev := losetup(t, fsImg)
	target := filepath.Join(dir, "model")
	inMountNS(t, func() error {
		if err := MountModel(dev, target, "ext4"); err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(target, "model.gguf"))
		if err != nil || !bytes.Equal(b, []byte("GGUF test")) {
			return fmt.Errorf("read model: %q, %v", b, err)
		}
		if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err == nil {
			return fmt.Errorf("model partition is writable")
		}
		if err := unix.Access(filepath.Join(target, "run.sh"), unix.X_OK); err == nil {
			return fmt.Errorf("model partition allows exec")
		}
		opts, _, err := mountOptions(target)
		if err != nil {
			return err
		}
		for _, w := range []string{"ro", "nosuid", "nodev", "noexec"} {
			if !strings.Contains(","+opts+",", ","+w+",") {
				return fmt.Errorf("model options %s lack %s", opts, w)
			}
		}
		return nil
	})
}

func losetup(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("losetup", append([]string{"--show", "-f", "-r"}, args...)...).Output()
	if err != nil {
		t.Skipf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	return loop
}
