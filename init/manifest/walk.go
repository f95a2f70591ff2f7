package manifest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Skipped are the top-level folders neither Generate nor the extra-file scan
// descend into: kernel and runtime filesystems, not part of the image.
var Skipped = []string{"proc", "sys", "dev", "run", "tmp"}

// file is a regular file found under the root.
type file struct {
	path string // relative, slash-separated
	size int64
	exec bool
}

// walk lists the regular files under root, sorted by path, skipping the
// Skipped folders at the top level. Symbolic links are not followed and not
// listed: the manifest covers the files they point to.
func walk(root string) ([]file, error) {
	var out []file
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if isSkipped(rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		out = append(out, file{path: rel, size: info.Size(), exec: info.Mode().Perm()&0o111 != 0})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

func isSkipped(rel string) bool {
	for _, s := range Skipped {
		if rel == s {
			return true
		}
	}
	return false
}

// rootInfo checks that root is a directory.
func rootInfo(root string) error {
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("manifest root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("manifest root %s: not a directory", root)
	}
	return nil
}
