package scan

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
)

// Modules finds kernel modules loaded after the watchdog started: the image's
// modules are loaded by init before, so anything new came from someone else.
type Modules struct {
	path string
	boot map[string]bool
}

// NewModules snapshots the module list in path (normally /proc/modules).
func NewModules(path string) (*Modules, error) {
	boot, err := ReadModules(path)
	if errors.Is(err, fs.ErrNotExist) {
		// A kernel without module support: nothing can be loaded later.
		return &Modules{path: path, boot: map[string]bool{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &Modules{path: path, boot: boot}, nil
}

func (*Modules) Name() string { return "modules" }

func (m *Modules) Scan(*Env) ([]Finding, error) {
	now, err := ReadModules(m.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &SkipError{Reason: "kernel without loadable modules"}
	}
	if err != nil {
		return nil, err
	}
	var added []string
	for name := range now {
		if !m.boot[name] {
			added = append(added, name)
		}
	}
	sort.Strings(added)
	out := make([]Finding, 0, len(added))
	for _, name := range added {
		out = append(out, finding("modules", name, "kernel module %s was loaded after boot", name))
	}
	return out, nil
}

// ReadModules returns the names of the modules listed in a /proc/modules file.
func ReadModules(path string) (map[string]bool, error) {
	lines, err := procLines(path)
	if err != nil {
		return nil, fmt.Errorf("read kernel modules: %w", err)
	}
	mods := make(map[string]bool, len(lines))
	for _, l := range lines {
		// "name size refcount deps state address"
		if len(l) < 5 {
			return nil, fmt.Errorf("read kernel modules: %s: short line %q", path, l)
		}
		mods[l[0]] = true
	}
	return mods, nil
}
