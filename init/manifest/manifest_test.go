package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree writes a small image-like tree and returns its root.
func tree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := []struct {
		path string
		data string
		mode os.FileMode
	}{
		{"bin/kwyre-init", "ELF init", 0o755},
		{"bin/kwyre-inference", "ELF inference", 0o755},
		{"etc/kwyre/config.json", `{"manifest":"/etc/kwyre/manifest"}`, 0o644},
		{"lib/x86_64-linux-gnu/libc.so.6", strings.Repeat("libc", 50000), 0o755},
		{"model/model.gguf", strings.Repeat("GGUF", 300000), 0o444},
		{"empty", "", 0o644},
		{"name with spaces", "spaces", 0o644},
	}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	// Runtime folders and links are not part of the manifest.
	for _, d := range []string{"proc", "dev", "run/kwyre", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("kwyre-init", filepath.Join(root, "bin/init-link")); err != nil {
		t.Fatal(err)
	}
	return root
}

func generate(t *testing.T, root string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Generate(root, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGenerateFormat(t *testing.T) {
	root := tree(t)
	m := generate(t, root)
	lines := strings.Split(strings.TrimSuffix(string(m), "\n"), "\n")
	wantPaths := []string{
		"bin/kwyre-inference", "bin/kwyre-init", "empty", "etc/kwyre/config.json",
		"lib/x86_64-linux-gnu/libc.so.6", "model/model.gguf", "name with spaces",
	}
	if len(lines) != len(wantPaths) {
		t.Fatalf("manifest has %d lines, want %d:\n%s", len(lines), len(wantPaths), m)
	}
	for i, l := range lines {
		parts := strings.SplitN(l, "  ", 3)
		if len(parts) != 3 || parts[2] != wantPaths[i] {
			t.Errorf("line %d = %q, want path %q", i, l, wantPaths[i])
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, parts[2]))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(data)
		if parts[0] != hex.EncodeToString(s[:]) {
			t.Errorf("%s: hash %s, want %x", parts[2], parts[0], s)
		}
	}
	// Generating twice gives the same bytes.
	if m2 := generate(t, root); !bytes.Equal(m, m2) {
		t.Error("Generate is not deterministic")
	}
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, root string)
		want   []Difference // Kind and Path compared
	}{
		{"unchanged", func(*testing.T, string) {}, nil},
		{"extra data file is fine", func(t *testing.T, root string) {
			write(t, root, "etc/motd", "hi", 0o644)
		}, nil},
		{"executables under skipped folders are fine", func(t *testing.T, root string) {
			write(t, root, "run/kwyre/x", "#!", 0o755)
			write(t, root, "tmp/x", "#!", 0o755)
		}, nil},
		{"tampered", func(t *testing.T, root string) {
			write(t, root, "bin/kwyre-init", "ELF Init", 0o755) // same size
		}, []Difference{{Kind: Changed, Path: "bin/kwyre-init"}}},
		{"tampered model", func(t *testing.T, root string) {
			f, err := os.OpenFile(filepath.Join(root, "model/model.gguf"), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{'X'}, 1000000)
			f.Close()
		}, []Difference{{Kind: Changed, Path: "model/model.gguf"}}},
		{"missing", func(t *testing.T, root string) {
			rm(t, root, "lib/x86_64-linux-gnu/libc.so.6")
		}, []Difference{{Kind: Missing, Path: "lib/x86_64-linux-gnu/libc.so.6"}}},
		{"resized", func(t *testing.T, root string) {
			write(t, root, "etc/kwyre/config.json", "{}", 0o644)
		}, []Difference{{Kind: Resized, Path: "etc/kwyre/config.json"}}},
		{"extra executable", func(t *testing.T, root string) {
			write(t, root, "bin/sh", "ELF shell", 0o755)
		}, []Difference{{Kind: ExtraExecutable, Path: "bin/sh"}}},
		{"data file made executable is fine if listed", func(t *testing.T, root string) {
			os.Chmod(filepath.Join(root, "empty"), 0o755)
		}, nil},
		{"listed file swapped for a link", func(t *testing.T, root string) {
			rm(t, root, "bin/kwyre-inference")
			if err := os.Symlink("kwyre-init", filepath.Join(root, "bin/kwyre-inference")); err != nil {
				t.Fatal(err)
			}
		}, []Difference{{Kind: NotRegular, Path: "bin/kwyre-inference"}}},
		{"listed folder swapped for a link", func(t *testing.T, root string) {
			other := t.TempDir()
			if err := os.Rename(filepath.Join(root, "lib"), filepath.Join(other, "lib")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(other, "lib"), filepath.Join(root, "lib")); err != nil {
				t.Fatal(err)
			}
		}, []Difference{{Kind: NotRegular, Path: "lib/x86_64-linux-gnu/libc.so.6"}}},
		{"several at once", func(t *testing.T, root string) {
			rm(t, root, "empty")
			write(t, root, "bin/kwyre-init", "x", 0o755)
			write(t, root, "usr/bin/gdb", "ELF gdb", 0o700)
		}, []Difference{
			{Kind: Resized, Path: "bin/kwyre-init"},
			{Kind: Missing, Path: "empty"},
			{Kind: ExtraExecutable, Path: "usr/bin/gdb"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tree(t)
			m := generate(t, root)
			tt.mutate(t, root)
			res, err := Verify(root, bytes.NewReader(m))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Verify: %v (differences %v)", err, res.Differences)
				}
			} else if !errors.Is(err, ErrMismatch) {
				t.Fatalf("Verify error = %v, want ErrMismatch", err)
			}
			if len(res.Differences) != len(tt.want) {
				t.Fatalf("differences = %v, want %v", res.Differences, tt.want)
			}
			for i, d := range res.Differences {
				if d.Kind != tt.want[i].Kind || d.Path != tt.want[i].Path {
					t.Errorf("difference %d = %v, want %v %s", i, d, tt.want[i].Kind, tt.want[i].Path)
				}
				if d.String() == "" {
					t.Errorf("difference %d prints empty", i)
				}
			}
			sum := sha256.Sum256(m)
			if res.Files != 7 || res.ManifestSHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("result = files %d manifest %s", res.Files, res.ManifestSHA256)
			}
			if res.OK() != (err == nil) || res.Summary().Verified != res.OK() {
				t.Errorf("OK %v, err %v, summary %+v", res.OK(), err, res.Summary())
			}
		})
	}
}

func TestVerifyChangedShowsBothHashes(t *testing.T) {
	root := tree(t)
	m := generate(t, root)
	write(t, root, "bin/kwyre-init", "ELF Init", 0o755)
	res, _ := Verify(root, bytes.NewReader(m))
	if len(res.Differences) != 1 {
		t.Fatalf("differences = %v", res.Differences)
	}
	d := res.Differences[0]
	want := sha256.Sum256([]byte("ELF Init"))
	old := sha256.Sum256([]byte("ELF init"))
	if d.GotSHA256 != hex.EncodeToString(want[:]) || d.WantSHA256 != hex.EncodeToString(old[:]) {
		t.Errorf("difference = %+v", d)
	}
	if s := d.String(); !strings.Contains(s, d.GotSHA256) || !strings.Contains(s, d.WantSHA256) {
		t.Errorf("String() = %q lacks a hash", s)
	}
}

func TestVerifyBytesCounted(t *testing.T) {
	root := tree(t)
	res, err := Verify(root, bytes.NewReader(generate(t, root)))
	if err != nil {
		t.Fatal(err)
	}
	want := int64(len("ELF init") + len("ELF inference") + len(`{"manifest":"/etc/kwyre/manifest"}`) + 200000 + 1200000 + 0 + len("spaces"))
	if res.Bytes != want {
		t.Errorf("Bytes = %d, want %d", res.Bytes, want)
	}
}

func TestParseErrors(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct{ name, in, want string }{
		{"no separators", h + " 1 a\n", "want"},
		{"short hash", "abc  1  a\n", "hash"},
		{"upper hash", strings.ToUpper(h) + "  1  a\n", "hash"},
		{"negative size", h + "  -1  a\n", "size"},
		{"leading zero", h + "  01  a\n", "size"},
		{"absolute", h + "  1  /bin/a\n", "absolute"},
		{"dotdot", h + "  1  ../a\n", "leaves the root"},
		{"unclean", h + "  1  a//b\n", "not clean"},
		{"empty path", h + "  1  \n", "empty path"},
		{"duplicate", h + "  1  a\n" + h + "  1  a\n", "twice"},
		{"unsorted", h + "  1  b\n" + h + "  1  a\n", "out of order"},
		{"line too long", h + "  1  " + strings.Repeat("a", 5000) + "\n", "read manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v, want %q", err, tt.want)
			}
			// Verify refuses the same manifest without touching the tree.
			if _, err := Verify(t.TempDir(), strings.NewReader(tt.in)); err == nil || errors.Is(err, ErrMismatch) {
				t.Fatalf("Verify error = %v, want a parse error", err)
			}
		})
	}
}

func TestVerifyBadRoot(t *testing.T) {
	if _, err := Verify(filepath.Join(t.TempDir(), "nope"), strings.NewReader("")); err == nil {
		t.Fatal("Verify on a missing root succeeded")
	}
	if err := Generate(filepath.Join(t.TempDir(), "nope"), &bytes.Buffer{}); err == nil {
		t.Fatal("Generate on a missing root succeeded")
	}
}

func TestEmptyManifestFlagsEveryExecutable(t *testing.T) {
	root := tree(t)
	res, err := Verify(root, strings.NewReader(""))
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("err = %v", err)
	}
	if len(res.Differences) != 3 {
		t.Errorf("differences = %v, want the 3 executables", res.Differences)
	}
}

func write(t *testing.T, root, rel, data string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func rm(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	root := tree(t)
	entries, _, err := Parse(bytes.NewReader(generate(t, root)))
	if err != nil {
		t.Fatal(err)
	}
	write(t, root, "bin/kwyre-init", "ELF Init", 0o755)
	write(t, root, "lib/extra.ko", "module", 0o644)
	tests := []struct {
		paths []string
		want  []Kind
	}{
		{[]string{"/bin/kwyre-inference", "/lib/x86_64-linux-gnu/libc.so.6"}, nil},
		{[]string{"/bin/kwyre-init"}, []Kind{Changed}},
		{[]string{"/lib/extra.ko"}, []Kind{Unlisted}},
		{[]string{"/empty", "/lib/extra.ko", "/bin/kwyre-init"}, []Kind{Unlisted, Changed}},
		{nil, nil},
	}
	for _, tt := range tests {
		d := Check(root, entries, tt.paths)
		if len(d) != len(tt.want) {
			t.Errorf("Check(%v) = %v, want kinds %v", tt.paths, d, tt.want)
			continue
		}
		for i := range d {
			if d[i].Kind != tt.want[i] {
				t.Errorf("Check(%v)[%d] = %v, want %v", tt.paths, i, d[i], tt.want[i])
			}
		}
	}
}
