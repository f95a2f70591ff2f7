package mounts

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"
)

// ModelFlags are the flags of the model partition: read-only, no devices,
// no set-uid, nothing executable.
const ModelFlags = unix.MS_RDONLY | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC

// FindPartition returns the /dev path of the one block device under sysRoot
// ("/sys" in the appliance) whose uevent says PARTNAME=name. Two partitions
// with that name are an error: init must not guess which one to trust.
func FindPartition(sysRoot, name string) (string, error) {
	ueventPaths, err := filepath.Glob(filepath.Join(sysRoot, "class/block/*/uevent"))
	if err != nil {
		return "", err
	}
	var found []string
	for _, p := range ueventPaths {
		kv, err := readUevent(p)
		if err != nil {
			continue // a device that went away
		}
		if kv["DEVTYPE"] == "partition" && kv["PARTNAME"] == name && kv["DEVNAME"] != "" {
			found = append(found, "/dev/"+kv["DEVNAME"])
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no partition named %q: %w", name, os.ErrNotExist)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%d partitions named %q (%s): refusing to choose", len(found), name, strings.Join(found, ", "))
}

func readUevent(p string) (map[string]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kv := make(map[string]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			kv[k] = v
		}
	}
	return kv, sc.Err()
}

// WaitPartition polls FindPartition until the partition appears (block
// drivers probe asynchronously) or timeout passes.
func WaitPartition(sysRoot, name string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		dev, err := FindPartition(sysRoot, name)
		if err == nil || !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			if err != nil && errors.Is(err, os.ErrNotExist) {
				err = fmt.Errorf("%w (waited %s)", err, timeout)
			}
			return dev, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MountModel mounts dev read-only, nodev, nosuid, noexec at target.
func MountModel(dev, target, fstype string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", target, err)
	}
	data := ""
	if fstype == "ext4" {
		data = "noload" // no journal replay: the medium is never written
	}
	if _, err := mount.Mount(dev, target, fstype, data, ModelFlags); err != nil {
		return fmt.Errorf("mount model partition %s: %w", dev, err)
	}
	return nil
}
