// Package kmod finds kernel modules in an unpacked module tree and orders them
// so that every module comes after the modules it depends on.
//
// Dependencies come from modules.dep when the tree has one; Debian's kernel
// package ships none, so otherwise each module's own .modinfo section
// (its "depends=" field) is read. A tree may hold no .ko file at all when
// its modules.builtin lists what the kernel has built in (Kwyre's kernel).
package kmod

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Module is one loadable module of the tree.
type Module struct {
	Name    string   // canonical name: dashes become underscores
	Path    string   // path relative to the module tree, e.g. kernel/fs/erofs/erofs.ko
	Depends []string // canonical names of the modules it needs
	Pre     []string // soft dependencies to load first ("softdep=pre: ..."): names or aliases
}

// Tree is an indexed module directory (lib/modules/VERSION).
type Tree struct {
	Dir     string
	byName  map[string]string // canonical name -> relative path
	builtin map[string]bool
	deps    map[string][]string // from modules.dep, keyed by relative path; nil if absent
	aliases map[string]string   // alias -> module name, built on first need
}

// Canonical returns the module name the kernel uses: dashes become underscores.
func Canonical(name string) string {
	return strings.ReplaceAll(name, "-", "_")
}

// nameOf strips the directory and the .ko[.zst|.xz|.gz] suffix.
func nameOf(p string) (string, bool) {
	base := filepath.Base(p)
	for _, ext := range []string{".ko", ".ko.zst", ".ko.xz", ".ko.gz"} {
		if strings.HasSuffix(base, ext) {
			return Canonical(strings.TrimSuffix(base, ext)), true
		}
	}
	return "", false
}

// Open indexes the module tree at dir.
func Open(dir string) (*Tree, error) {
	t := &Tree{Dir: dir, byName: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name, ok := nameOf(p)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if prev, dup := t.byName[name]; dup {
			return fmt.Errorf("module %s found twice: %s and %s", name, prev, rel)
		}
		t.byName[name] = filepath.ToSlash(rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", dir, err)
	}
	if err := t.readBuiltin(); err != nil {
		return nil, err
	}
	// A kernel with its drivers built in has a tree with no .ko files, but
	// its modules.builtin says what is there.
	if len(t.byName) == 0 && len(t.builtin) == 0 {
		return nil, fmt.Errorf("index modules in %s: no .ko files and no modules.builtin", dir)
	}
	if err := t.readModulesDep(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tree) readBuiltin() error {
	b, err := os.ReadFile(filepath.Join(t.Dir, "modules.builtin"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read modules.builtin: %w", err)
	}
	for _, line := range strings.Fields(string(b)) {
		if name, ok := nameOf(line); ok {
			t.builtin[name] = true
		}
	}
	return nil
}

func (t *Tree) readModulesDep() error {
	f, err := os.Open(filepath.Join(t.Dir, "modules.dep"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read modules.dep: %w", err)
	}
	defer f.Close()
	t.deps = map[string][]string{}
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" {
			continue
		}
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("modules.dep line %d: no colon in %q", n, line)
		}
		var names []string
		for _, p := range strings.Fields(rest) {
			name, ok := nameOf(p)
			if !ok {
				return fmt.Errorf("modules.dep line %d: %q is not a module", n, p)
			}
			names = append(names, name)
		}
		t.deps[strings.TrimSpace(mod)] = names
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("read modules.dep: %w", err)
	}
	return nil
}

// Builtin reports whether the kernel has the module built in.
func (t *Tree) Builtin(name string) bool { return t.builtin[Canonical(name)] }

// Module returns the module called name and its direct dependencies.
func (t *Tree) Module(name string) (Module, error) {
	name = Canonical(name)
	rel, ok := t.byName[name]
	if !ok {
		return Module{}, fmt.Errorf("module %s: not in %s", name, t.Dir)
	}
	m := Module{Name: name, Path: rel}
	// A module added after depmod ran (an out-of-tree driver dropped into
	// extra/) is not in modules.dep: its own .modinfo says what it needs.
	if d, ok := t.deps[rel]; ok {
		m.Depends = d
		return m, nil
	}
	info, err := t.Modinfo(rel)
	if err != nil {
		return Module{}, err
	}
	for _, d := range strings.Split(info["depends"], ",") {
		if d = strings.TrimSpace(d); d != "" {
			m.Depends = append(m.Depends, Canonical(d))
		}
	}
	m.Pre = softdepPre(info["softdep"])
	return m, nil
}

// softdepPre returns the "pre:" names of a softdep value such as
// "pre: crc32c post: foo".
func softdepPre(v string) []string {
	var out []string
	pre := false
	for _, f := range strings.Fields(v) {
		switch f {
		case "pre:":
			pre = true
		case "post:":
			pre = false
		default:
			if pre {
				out = append(out, f)
			}
		}
	}
	return out
}

// lookup resolves a soft dependency: a module name, or else an alias some
// module declares (libcrc32c asks for "crc32c", which crc32c_generic
// provides; with no modprobe in the image it must be loaded first). When
// several modules declare the alias, the first name in sort order wins
// (crc32c_generic before crc32c_intel). It returns "" if nothing matches.
func (t *Tree) lookup(name string) (string, error) {
	if _, ok := t.byName[Canonical(name)]; ok || t.builtin[Canonical(name)] {
		return Canonical(name), nil
	}
	if t.aliases == nil {
		t.aliases = map[string]string{}
		names := make([]string, 0, len(t.byName))
		for n := range t.byName {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			data, err := ReadModule(filepath.Join(t.Dir, t.byName[n]))
			if err != nil {
				return "", err
			}
			for _, a := range modinfoAll(data, "alias") {
				if _, seen := t.aliases[a]; !seen {
					t.aliases[a] = n
				}
			}
		}
	}
	return t.aliases[name], nil
}

// modinfoAll returns every value of key in a module's .modinfo section.
func modinfoAll(module []byte, key string) []string {
	f, err := elf.NewFile(bytes.NewReader(module))
	if err != nil {
		return nil
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil
	}
	data, err := sec.Data()
	if err != nil {
		return nil
	}
	var out []string
	for _, field := range bytes.Split(data, []byte{0}) {
		if k, v, ok := strings.Cut(string(field), "="); ok && k == key {
			out = append(out, v)
		}
	}
	return out
}

// Modinfo reads the key=value pairs of a module's .modinfo section.
// Keys that appear more than once (alias, parm) keep their last value.
func (t *Tree) Modinfo(rel string) (map[string]string, error) {
	data, err := ReadModule(filepath.Join(t.Dir, rel))
	if err != nil {
		return nil, err
	}
	return ParseModinfo(data)
}

// ReadModule returns the ELF bytes of a module, decompressing .ko.zst.
func ReadModule(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	switch {
	case strings.HasSuffix(path, ".ko"):
		return raw, nil
	case strings.HasSuffix(path, ".ko.zst"):
		dec, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		out, err := dec.DecodeAll(raw, nil)
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", path, err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("module %s: compression not supported (use .ko or .ko.zst)", path)
	}
}

// ParseModinfo parses the .modinfo section of an ELF module.
func ParseModinfo(module []byte) (map[string]string, error) {
	f, err := elf.NewFile(bytes.NewReader(module))
	if err != nil {
		return nil, fmt.Errorf("parse module ELF: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("parse module ELF: no .modinfo section")
	}
	data, err := io.ReadAll(sec.Open())
	if err != nil {
		return nil, fmt.Errorf("read .modinfo: %w", err)
	}
	info := map[string]string{}
	for _, field := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(field), "=")
		if ok {
			info[k] = v
		}
	}
	return info, nil
}

// Resolve returns the modules named and everything they depend on, each once,
// every module after its dependencies. Built-in modules are left out.
// The order is deterministic: dependencies first, then the names in the order given.
func (t *Tree) Resolve(names []string) ([]Module, error) {
	var out []Module
	done := map[string]bool{}
	visiting := map[string]bool{}
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		name = Canonical(name)
		if done[name] || t.builtin[name] {
			return nil
		}
		if visiting[name] {
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, name), " -> "))
		}
		visiting[name] = true
		m, err := t.Module(name)
		if err != nil {
			if len(chain) > 0 {
				return fmt.Errorf("%s (needed by %s)", err, chain[len(chain)-1])
			}
			return err
		}
		deps := append([]string(nil), m.Depends...)
		sort.Strings(deps)
		for _, p := range m.Pre {
			name, err := t.lookup(p)
			if err != nil {
				return err
			}
			if name != "" {
				deps = append([]string{name}, deps...)
			}
		}
		for _, d := range deps {
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
		}
		visiting[name] = false
		done[name] = true
		out = append(out, m)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}
