// Package modules loads the kernel modules the image lists, in the order
// given, straight from their files: Debian's modules come signed and without
// modules.dep, so the image builder orders them and the kernel checks each
// signature.
package modules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// Outcome is what happened to one module.
type Outcome struct {
	Path    string
	Name    string
	Already bool  // built in or loaded before
	Skipped error // no such hardware (ENODEV/ENXIO): reported, not fatal
}

// Load loads each module file in order. A module that is already there
// (EEXIST) is fine; one whose hardware is absent (ENODEV, ENXIO — a GPU
// driver on a machine without the GPU) is reported in its Outcome; any
// other failure (bad signature, missing symbol, missing file) stops the
// load with an error naming the module.
func Load(paths []string) ([]Outcome, error) {
	var out []Outcome
	for _, p := range paths {
		o := Outcome{Path: p, Name: Name(p)}
		err := loadOne(p)
		switch {
		case err == nil:
		case errors.Is(err, unix.EEXIST):
			o.Already = true
		case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			o.Skipped = err
		default:
			return out, fmt.Errorf("load module %s: %w", p, err)
		}
		out = append(out, o)
	}
	return out, nil
}

func loadOne(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	// finit_module first: the kernel reads the file itself and checks its
	// signature; u-root's FileInit handles compressed modules.
	if strings.HasSuffix(p, ".ko") {
		err := unix.FinitModule(int(f.Fd()), "", 0)
		if err != unix.ENOSYS {
			return err
		}
	}
	return kmodule.FileInit(f, "", 0)
}

// Name is the module name the kernel uses for the file at p:
// "drivers/block/virtio_blk.ko.xz" -> "virtio_blk".
func Name(p string) string {
	b := filepath.Base(p)
	for _, ext := range []string{".xz", ".gz", ".zst"} {
		b = strings.TrimSuffix(b, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(b, ".ko"), "-", "_")
}

// Loaded returns the names in /proc/modules (procModules), for checks.
func Loaded(procModules string) (map[string]bool, error) {
	b, err := os.ReadFile(procModules)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", procModules, err)
	}
	m := make(map[string]bool)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			m[f[0]] = true
		}
	}
	return m, nil
}
