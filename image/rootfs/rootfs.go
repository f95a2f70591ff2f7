// Package rootfs stages the appliance's file tree in a directory: the
// programs, their shared libraries, kernel modules, configuration and the
// model. The staged tree is what the manifest covers and what the initramfs
// and the model partition are written from.
package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Tree is a staging directory.
type Tree struct {
	Dir string
}

// New empties dir and returns a Tree rooted there.
func New(dir string) (*Tree, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clear staging dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create staging dir: %w", err)
	}
	return &Tree{Dir: dir}, nil
}

// Path returns the host path of rel (a path inside the tree, "/" separated,
// leading slash optional). It refuses paths that leave the tree.
func (t *Tree) Path(rel string) (string, error) {
	clean := path.Clean("/" + rel)
	if clean == "/" || strings.Contains(rel, "\x00") {
		return "", fmt.Errorf("staging path %q: not a file path", rel)
	}
	return filepath.Join(t.Dir, filepath.FromSlash(clean[1:])), nil
}

func (t *Tree) parent(rel string) (string, error) {
	p, err := t.Path(rel)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("create parent of %s: %w", rel, err)
	}
	return p, nil
}

// WriteFile puts data at rel with the given permission bits.
func (t *Tree) WriteFile(rel string, data []byte, perm fs.FileMode) error {
	p, err := t.parent(rel)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, data, perm); err != nil {
		return fmt.Errorf("stage %s: %w", rel, err)
	}
	// WriteFile is subject to the umask and keeps an old file's mode.
	return os.Chmod(p, perm)
}

// CopyFile copies the host file src to rel with the given permission bits.
func (t *Tree) CopyFile(src, rel string, perm fs.FileMode) error {
	p, err := t.parent(rel)
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("stage %s: %w", rel, err)
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil {
		return fmt.Errorf("stage %s: %w", rel, err)
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("stage %s: %s is not a regular file", rel, src)
	}
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("stage %s: %w", rel, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("stage %s: copy %s: %w", rel, src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("stage %s: %w", rel, err)
	}
	return os.Chmod(p, perm)
}

// LinkFile hard-links src at rel when both are on one filesystem and src
// already has the wanted mode (a large model then costs no copy); otherwise it
// copies. Files linked this way must never be modified in place: see FlipByte.
func (t *Tree) LinkFile(src, rel string, perm fs.FileMode) error {
	p, err := t.parent(rel)
	if err != nil {
		return err
	}
	if st, err := os.Stat(src); err == nil && st.Mode().IsRegular() && st.Mode().Perm() == perm {
		if err := os.Link(src, p); err == nil {
			return nil
		}
	}
	return t.CopyFile(src, rel, perm)
}

// Symlink creates a symbolic link at rel pointing to target.
func (t *Tree) Symlink(target, rel string) error {
	p, err := t.parent(rel)
	if err != nil {
		return err
	}
	if err := os.Symlink(target, p); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("stage symlink %s: %w", rel, err)
	}
	return nil
}

// FlipByte inverts the bits of one byte of the staged file rel, at offset
// off (negative: counted from the end). The file is rewritten as a new inode,
// so a hard-linked source outside the tree stays untouched. Tests use it to
// make tampered images.
func (t *Tree) FlipByte(rel string, off int64) error {
	p, err := t.Path(rel)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("tamper %s: %w", rel, err)
	}
	if off < 0 {
		off += int64(len(data))
	}
	if off < 0 || off >= int64(len(data)) {
		return fmt.Errorf("tamper %s: offset %d outside a %d-byte file", rel, off, len(data))
	}
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	data[off] ^= 0xff
	tmp := p + ".tamper"
	if err := os.WriteFile(tmp, data, st.Mode().Perm()); err != nil {
		return fmt.Errorf("tamper %s: %w", rel, err)
	}
	if err := os.Chmod(tmp, st.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// Size returns the total bytes of the regular files under rel ("" = all).
func (t *Tree) Size(rel string) (int64, error) {
	root := t.Dir
	if rel != "" {
		var err error
		if root, err = t.Path(rel); err != nil {
			return 0, err
		}
	}
	var n int64
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}
