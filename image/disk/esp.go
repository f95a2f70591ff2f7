// Package disk writes the appliance's boot disk: a FAT32 EFI system
// partition, an optional read-only model partition, and the GPT around them.
// Everything is written into files (no root, no loop devices) and every
// identifier and timestamp is fixed or derived from content, so the same
// inputs give the same bytes.
package disk

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Epoch is the fixed timestamp written into the filesystems
// (1980-01-01, the earliest date FAT can hold).
const Epoch = 315532800

const mib = 1 << 20

// ESPSize returns a FAT32 partition size that holds a file of n bytes: at
// least 64 MiB (FAT32 needs 65525 clusters), with room for the directories.
func ESPSize(n int64) int64 {
	return max(64*mib, alignUp(n+n/16+4*mib, mib))
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// toolEnv is the environment for mkfs.vfat and mtools: SOURCE_DATE_EPOCH
// fixes the timestamps mtools writes; MTOOLS_SKIP_CHECK quiets its geometry
// checks on an image file.
func toolEnv() []string {
	return append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.Itoa(Epoch), "MTOOLS_SKIP_CHECK=1", "TZ=UTC")
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = toolEnv()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, b)
	}
	return nil
}

// WriteESP creates a FAT32 filesystem image at out holding efi as
// EFI/BOOT/BOOTX64.EFI (the removable-media path every UEFI firmware tries).
// volumeID is the filesystem's serial number.
func WriteESP(out, efi string, volumeID uint32) (int64, error) {
	st, err := os.Stat(efi)
	if err != nil {
		return 0, fmt.Errorf("ESP: %w", err)
	}
	size := ESPSize(st.Size())
	os.Remove(out)
	if err := run("mkfs.vfat", "-C", "-F", "32", "-n", "KWYRE-EFI", "-i", fmt.Sprintf("%08x", volumeID),
		"--invariant", out, strconv.FormatInt(size/1024, 10)); err != nil {
		return 0, fmt.Errorf("ESP: %w", err)
	}
	// mcopy -m keeps the source's mtime: copy from a file whose mtime is fixed.
	tmp := filepath.Join(filepath.Dir(out), "BOOTX64.EFI")
	data, err := os.ReadFile(efi)
	if err != nil {
		return 0, fmt.Errorf("ESP: %w", err)
	}
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return 0, fmt.Errorf("ESP: %w", err)
	}
	defer os.Remove(tmp)
	if err := setEpoch(tmp); err != nil {
		return 0, fmt.Errorf("ESP: %w", err)
	}
	if err := run("mmd", "-i", out, "::EFI", "::EFI/BOOT"); err != nil {
		return 0, fmt.Errorf("ESP: %w", err)
	}
	if err := run("mcopy", "-m", "-i", out, tmp, "::EFI/BOOT/BOOTX64.EFI"); err != nil {
		return 0, fmt.Errorf("ESP: %w", err)
	}
	return size, nil
}
