package disk

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Filesystems the model partition can use.
var modelFS = map[string]bool{"erofs": true, "squashfs": true}

// WriteModelFS writes the directory dir as a read-only filesystem image at
// out, with every owner root, every timestamp Epoch and a fixed UUID, and
// returns the image's size.
func WriteModelFS(fsType, out, dir, uuid string) (int64, error) {
	if !modelFS[fsType] {
		return 0, fmt.Errorf("model partition filesystem %q: want erofs or squashfs", fsType)
	}
	os.Remove(out)
	switch fsType {
	case "erofs":
		if err := run("mkfs.erofs", "--quiet", "-x-1", "-T"+strconv.Itoa(Epoch), "-U"+uuid, "--all-root", out, dir); err != nil {
			return 0, fmt.Errorf("model partition: %w", err)
		}
	case "squashfs":
		// GGUF weights barely compress; reading them uncompressed is faster.
		if err := run("mksquashfs", dir, out, "-noappend", "-no-xattrs", "-all-root",
			"-noI", "-noD", "-noF", "-no-progress", "-quiet",
			"-mkfs-time", strconv.Itoa(Epoch), "-all-time", strconv.Itoa(Epoch)); err != nil {
			return 0, fmt.Errorf("model partition: %w", err)
		}
	}
	st, err := os.Stat(out)
	if err != nil {
		return 0, fmt.Errorf("model partition: %w", err)
	}
	return st.Size(), nil
}

// setEpoch sets a file's times to Epoch.
func setEpoch(path string) error {
	t := time.Unix(Epoch, 0)
	return os.Chtimes(path, t, t)
}
