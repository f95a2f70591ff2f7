package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPathStaysInside(t *testing.T) {
	tree, err := New(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rel, want string
		bad       bool
	}{
		{"/bin/x", "bin/x", false},
		{"bin/x", "bin/x", false},
		{"../../etc/passwd", "etc/passwd", false}, // cleaned against the root
		{"/", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		got, err := tree.Path(tc.rel)
		if tc.bad {
			if err == nil {
				t.Errorf("Path(%q) accepted", tc.rel)
			}
			continue
		}
		if err != nil || got != filepath.Join(tree.Dir, tc.want) {
			t.Errorf("Path(%q) = %q, %v", tc.rel, got, err)
		}
	}
}

func TestFlipByteLeavesLinkedSource(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "model.gguf")
	if err := os.WriteFile(src, []byte("abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(src, 0o644)
	tree, err := New(filepath.Join(dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.LinkFile(src, "/model/model.gguf", 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tree.FlipByte("model/model.gguf", -1); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(tree.Dir, "model/model.gguf"))
	orig, _ := os.ReadFile(src)
	want := []byte("abcdef")
	want[5] ^= 0xff
	if string(orig) != "abcdef" || string(got) != string(want) {
		t.Errorf("source %q, staged %q", orig, got)
	}
	if err := tree.FlipByte("model/model.gguf", 6); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("FlipByte past the end: %v", err)
	}
}

func TestAddLibraries(t *testing.T) {
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skip("no /bin/true")
	}
	tree, err := New(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	libs, err := tree.AddLibraries("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	var libc bool
	for _, l := range libs {
		st, err := os.Lstat(filepath.Join(tree.Dir, l))
		if err != nil {
			t.Errorf("%s listed, not staged: %v", l, err)
			continue
		}
		if st.Mode().IsRegular() && strings.Contains(l, "libc.so") {
			libc = true
		}
	}
	if !libc {
		t.Errorf("libc not staged as a file among %v", libs)
	}
}
