//go:build !linux

package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

type rootDir struct{ root string }

func openRoot(root string) (rootDir, error) { return rootDir{root}, nil }

func (d rootDir) Close() error { return nil }

func (d rootDir) open(rel string) (*os.File, int64, error) {
	p := filepath.Join(d.root, filepath.FromSlash(rel))
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("open %s: %w", rel, errNotRegular)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
