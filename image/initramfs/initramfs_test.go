package initramfs

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
)

func stage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"init": "#!init", "bin/b": "bbb", "bin-x/c": "c", "model/model.gguf": "GGUF"}
	for p, c := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o700) // the archive must say 0755 anyway
		if err := os.WriteFile(full, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("bin/b", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func read(t *testing.T, data []byte) []cpio.Record {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(dec)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestWrite(t *testing.T) {
	dir := stage(t)
	var a, b bytes.Buffer
	skip := Options{Skip: func(rel string) bool { return rel == "model" }}
	if err := Write(&a, dir, skip); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, dir, skip); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two archives of the same tree differ")
	}
	recs := read(t, a.Bytes())
	seen := map[string]cpio.Record{}
	var order []string
	for _, r := range recs {
		seen[r.Name] = r
		order = append(order, r.Name)
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d, want zeros", r.Name, r.MTime, r.UID, r.GID)
		}
	}
	want := []string{".", "bin", "bin/b", "bin-x", "bin-x/c", "dev", "dev/console", "init", "link"}
	if len(order) != len(want) {
		t.Fatalf("records %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("records %v, want %v", order, want)
		}
	}
	tests := []struct {
		name string
		mode uint64
	}{
		{".", cpio.S_IFDIR | 0o755},
		{"bin", cpio.S_IFDIR | 0o755},
		{"bin/b", cpio.S_IFREG | 0o755},
		{"dev/console", cpio.S_IFCHR | 0o600},
		{"link", cpio.S_IFLNK | 0o777},
	}
	for _, tc := range tests {
		if got := seen[tc.name].Mode; got != tc.mode {
			t.Errorf("%s: mode %o, want %o", tc.name, got, tc.mode)
		}
	}
	if c := seen["dev/console"]; c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console is %d,%d, want 5,1", c.Rmajor, c.Rminor)
	}
	content, _ := io.ReadAll(io.NewSectionReader(seen["bin/b"], 0, int64(seen["bin/b"].FileSize)))
	if string(content) != "bbb" {
		t.Errorf("bin/b = %q", content)
	}
	inos := map[uint64]string{}
	for _, r := range recs {
		if prev, dup := inos[r.Ino]; dup {
			t.Errorf("%s and %s share inode %d", prev, r.Name, r.Ino)
		}
		inos[r.Ino] = r.Name
	}
}

func TestRecordsRejectsSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := os.Create(filepath.Join(dir, "x", "ok"))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	fifo := filepath.Join(dir, "x", "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no mkfifo:", err)
	}
	if _, err := Records(dir, Options{}); err == nil {
		t.Fatal("Records accepted a FIFO")
	}
}
