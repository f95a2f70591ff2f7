package manifest

import (
	"bufio"
	"fmt"
	"io"
)

// Generate writes the manifest of every regular file under root to w,
// sorted by path. Symbolic links, devices and the Skipped top-level folders
// are left out. A file that changes size while it is read is an error.
func Generate(root string, w io.Writer) error {
	entries, err := Entries(root)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for _, e := range entries {
		if _, err := bw.WriteString(e.String() + "\n"); err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// Entries hashes every regular file under root and returns the manifest
// entries, sorted by path.
func Entries(root string) ([]Entry, error) {
	if err := rootInfo(root); err != nil {
		return nil, err
	}
	files, err := walk(root)
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(files))
	for i, f := range files {
		if err := checkPath(f.path); err != nil {
			return nil, fmt.Errorf("cannot list %q in a manifest: %w", f.path, err)
		}
		paths[i] = f.path
	}
	sums := hashAll(root, paths)
	entries := make([]Entry, len(files))
	for i, s := range sums {
		if s.err != nil {
			return nil, fmt.Errorf("hash %s: %w", paths[i], s.err)
		}
		if s.size != s.statSz {
			return nil, fmt.Errorf("hash %s: size changed while reading (%d, then %d bytes)", paths[i], s.statSz, s.size)
		}
		entries[i] = Entry{SHA256: s.sha256, Size: s.size, Path: paths[i]}
	}
	return entries, nil
}
