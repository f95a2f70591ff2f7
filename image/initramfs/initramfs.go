// Package initramfs writes a staged directory tree as a reproducible,
// zstd-compressed newc cpio archive that the kernel unpacks as its root.
package initramfs

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
)

// Options controls what goes into the archive.
type Options struct {
	// Skip leaves out the staged path (relative, "/"-separated) and, for a
	// directory, everything below it.
	Skip func(rel string) bool
}

// Records returns the archive's records for the tree at dir, sorted by
// name, "." and every directory included with mode 0755, and /dev/console
// (char 5,1) so that PID 1 starts with a console. Owners and times are zero.
func Records(dir string, opts Options) ([]cpio.Record, error) {
	recs := []cpio.Record{
		cpio.Directory(".", 0o755),
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if opts.Skip != nil && opts.Skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			recs = append(recs, cpio.Directory(rel, 0o755))
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			recs = append(recs, cpio.Symlink(rel, target))
		case info.Mode().IsRegular():
			recs = append(recs, cpio.Record{
				ReaderAt: lazyFile(p),
				Info: cpio.Info{
					Name:     rel,
					Mode:     cpio.S_IFREG | uint64(info.Mode().Perm()),
					FileSize: uint64(info.Size()),
				},
			})
		default:
			return fmt.Errorf("initramfs: %s is not a file, directory or symlink", rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", dir, err)
	}
	sort.SliceStable(recs, func(i, j int) bool { return less(recs[i].Name, recs[j].Name) })
	for i := range recs {
		// Distinct inode numbers, one link each: the kernel's unpacker
		// treats records sharing an inode and nlink>1 as hard links.
		recs[i].Ino = uint64(i + 1)
		recs[i].NLink = 1
		recs[i] = cpio.MakeReproducible(recs[i])
	}
	return recs, nil
}

// less orders paths so that a directory always comes before its contents:
// compare component by component.
func less(a, b string) bool {
	if a == "." || b == "." {
		return a == "." && b != "."
	}
	return strings.ReplaceAll(a, "/", "\x00") < strings.ReplaceAll(b, "/", "\x00")
}

// lazyFile opens the file only when the writer reads it, so an archive of
// many files does not hold them all open.
type lazyFile string

func (l lazyFile) ReadAt(p []byte, off int64) (int, error) {
	f, err := os.Open(string(l))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.ReadAt(p, off)
}

// WriteCPIO writes the records and the trailer as a newc archive.
func WriteCPIO(w io.Writer, recs []cpio.Record) error {
	rw := cpio.Newc.Writer(w) // deduplicating
	for _, r := range recs {
		if err := rw.WriteRecord(r); err != nil {
			return fmt.Errorf("write cpio record %s: %w", r.Name, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return fmt.Errorf("write cpio trailer: %w", err)
	}
	return nil
}

// Write writes the tree at dir to w as a zstd-compressed newc archive. The
// compression level and settings are fixed, so the same tree gives the same
// bytes.
func Write(w io.Writer, dir string, opts Options) error {
	recs, err := Records(dir, opts)
	if err != nil {
		return err
	}
	zw, err := zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(8<<20))
	if err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	if err := WriteCPIO(zw, recs); err != nil {
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	return nil
}
