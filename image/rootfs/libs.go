package rootfs

import (
	"fmt"
	"os"
	"sort"

	"github.com/u-root/u-root/pkg/ldd"
)

// AddLibraries stages the shared libraries the host binaries need, at the
// paths the host's dynamic loader reports. Symlinks in the chain (such as
// /lib64/ld-linux-x86-64.so.2 on a merged-/usr system) are staged as symlinks
// with the same target, and their targets as files, so every path the loader
// may open exists in the image. It returns the staged paths, sorted.
func (t *Tree) AddLibraries(binaries ...string) ([]string, error) {
	libs, err := ldd.FList(binaries...)
	if err != nil {
		return nil, fmt.Errorf("list shared libraries: %w", err)
	}
	if err := t.StageLibraries(libs); err != nil {
		return nil, err
	}
	sort.Strings(libs)
	return libs, nil
}

// StageLibraries stages host files at their own paths: symlinks as
// symlinks with the same target, regular files as copies (mode at most
// 0755). The caller lists the symlinks' targets too.
func (t *Tree) StageLibraries(libs []string) error {
	sorted := append([]string(nil), libs...)
	sort.Strings(sorted)
	for _, lib := range sorted {
		st, err := os.Lstat(lib)
		if err != nil {
			return fmt.Errorf("shared library %s: %w", lib, err)
		}
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(lib)
			if err != nil {
				return fmt.Errorf("shared library %s: %w", lib, err)
			}
			if err := t.Symlink(target, lib); err != nil {
				return err
			}
		case st.Mode().IsRegular():
			if err := t.CopyFile(lib, lib, st.Mode().Perm()&0o755); err != nil {
				return err
			}
		default:
			return fmt.Errorf("shared library %s: not a file or symlink", lib)
		}
	}
	return nil
}
