package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeTree makes a module tree whose dependencies come from modules.dep.
func writeTree(t *testing.T, dep string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/lib/crc.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func names(ms []Module) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestResolveModulesDep(t *testing.T) {
	files := []string{"kernel/a.ko", "kernel/b-x.ko", "kernel/c.ko", "kernel/d.ko"}
	dep := "kernel/a.ko: kernel/b-x.ko kernel/c.ko\nkernel/b-x.ko: kernel/c.ko\nkernel/c.ko:\nkernel/d.ko: kernel/a.ko\n"
	cycle := "kernel/a.ko: kernel/b-x.ko\nkernel/b-x.ko: kernel/a.ko\n"
	tests := []struct {
		name    string
		dep     string
		want    []string
		request []string
		wantErr string
	}{
		{"deps first", dep, []string{"c", "b_x", "a"}, []string{"a"}, ""},
		{"dashes and repeats", dep, []string{"c", "b_x", "a", "d"}, []string{"b-x", "a", "d", "c"}, ""},
		{"builtin skipped", dep, []string{"c"}, []string{"crc", "c"}, ""},
		{"missing", dep, nil, []string{"nosuch"}, "module nosuch: not in"},
		{"cycle", cycle, nil, []string{"a"}, "cycle: a -> b_x -> a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree, err := Open(writeTree(t, tc.dep, files...))
			if err != nil {
				t.Fatal(err)
			}
			got, err := tree.Resolve(tc.request)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve(%v) error = %v, want %q", tc.request, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names(got), tc.want) {
				t.Errorf("Resolve(%v) = %v, want %v", tc.request, names(got), tc.want)
			}
		})
	}
}

// TestResolveModinfo reads dependencies from real modules' .modinfo sections.
func TestResolveModinfo(t *testing.T) {
	dir := "../../build/debian-kernel/modules"
	if _, err := os.Stat(filepath.Join(dir, "modules.order")); err != nil {
		t.Skip("no unpacked Debian kernel modules in build/debian-kernel")
	}
	tree, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tree.Resolve([]string{"virtio_blk"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio_ring", "virtio", "virtio_blk"} // virtio needs virtio_ring
	if !reflect.DeepEqual(names(got), want) {
		t.Errorf("Resolve(virtio_blk) = %v, want %v", names(got), want)
	}
	if got[2].Path != "kernel/drivers/block/virtio_blk.ko" {
		t.Errorf("virtio_blk path = %q", got[2].Path)
	}
}

// TestResolveSoftdep: erofs needs libcrc32c, whose soft dependency
// "pre: crc32c" is an alias crc32c_generic provides.
func TestResolveSoftdep(t *testing.T) {
	dir := "../../build/debian-kernel/modules"
	if _, err := os.Stat(filepath.Join(dir, "modules.order")); err != nil {
		t.Skip("no unpacked Debian kernel modules in build/debian-kernel")
	}
	tree, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tree.Resolve([]string{"erofs"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"crc32c_generic", "libcrc32c", "erofs"}
	if !reflect.DeepEqual(names(got), want) {
		t.Errorf("Resolve(erofs) = %v, want %v", names(got), want)
	}
}

func TestSoftdepPre(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"pre: crc32c", []string{"crc32c"}},
		{"pre: a b post: c", []string{"a", "b"}},
		{"post: c", nil},
		{"", nil},
	}
	for _, tc := range tests {
		if got := softdepPre(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("softdepPre(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseModinfoRejectsNonELF(t *testing.T) {
	if _, err := ParseModinfo([]byte("not an elf")); err == nil {
		t.Fatal("ParseModinfo accepted garbage")
	}
}

// TestOpenBuiltinOnly: a kernel with its drivers built in ships a tree
// with modules.builtin and no .ko; everything built in resolves to nothing.
func TestOpenBuiltinOnly(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "no modules.builtin") {
		t.Errorf("empty folder: %v, want an error naming modules.builtin", err)
	}
	builtin := "kernel/drivers/acpi/button.ko\nkernel/drivers/block/virtio_blk.ko\nkernel/drivers/hid/hid-generic.ko\n"
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(builtin), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tree.Resolve([]string{"button", "virtio_blk", "hid_generic"})
	if err != nil || len(got) != 0 {
		t.Errorf("Resolve(built-ins) = %v, %v; want nothing to load", names(got), err)
	}
	if !tree.Builtin("hid-generic") {
		t.Error("Builtin(hid-generic) = false")
	}
	if _, err := tree.Resolve([]string{"nvidia"}); err == nil || !strings.Contains(err.Error(), "module nvidia: not in") {
		t.Errorf("Resolve(nvidia) = %v, want 'not in'", err)
	}
}

// TestModuleOutsideModulesDep: a module dropped into the tree after depmod
// ran has no modules.dep line; its .modinfo is read instead.
func TestModuleOutsideModulesDep(t *testing.T) {
	src := "../../build/debian-kernel/modules/kernel/drivers/block/virtio_blk.ko"
	data, err := os.ReadFile(src)
	if err != nil {
		t.Skip("no unpacked Debian kernel modules in build/debian-kernel")
	}
	dir := writeTree(t, "kernel/c.ko:\n", "kernel/c.ko")
	if err := os.MkdirAll(filepath.Join(dir, "extra"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "extra", "virtio_blk.ko"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tree.Module("virtio_blk")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Depends, []string{"virtio", "virtio_ring"}) {
		t.Errorf("virtio_blk depends on %v, want [virtio virtio_ring] from its .modinfo", m.Depends)
	}
}

// TestDebianSignature parses the signature Debian's build appended to one
// of its modules (Debian's certificate is not at hand to verify it).
func TestDebianSignature(t *testing.T) {
	data, err := os.ReadFile("../../build/debian-kernel/modules/kernel/drivers/block/virtio_blk.ko")
	if err != nil {
		t.Skip("no unpacked Debian kernel modules in build/debian-kernel")
	}
	s, err := ParseSignature(data)
	if err != nil {
		t.Fatal(err)
	}
	if s.Serial == nil && s.KeyID == nil {
		t.Error("no signer")
	}
	t.Logf("signed with %v by %s", s.Digest, s.Signer())
}
