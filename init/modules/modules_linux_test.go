package modules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko", "virtio_blk"},
		{"drivers/block/virtio_blk.ko.xz", "virtio_blk"},
		{"crc32c-intel.ko.zst", "crc32c_intel"},
		{"button.ko.gz", "button"},
	}
	for _, tt := range tests {
		if got := Name(tt.in); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.ko")
	os.WriteFile(garbage, []byte("not an ELF module"), 0o644)
	tests := []struct {
		name, path, want string
	}{
		{"missing file", filepath.Join(dir, "nope.ko"), "no such file"},
		{"not a module", garbage, "load module " + garbage},
		{"unknown compression", filepath.Join(dir, "x.ko.bz2"), "load module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Load([]string{tt.path})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want %q", err, tt.want)
			}
			if len(out) != 0 {
				t.Errorf("outcomes = %v", out)
			}
		})
	}
}

func TestLoadNothing(t *testing.T) {
	out, err := Load(nil)
	if err != nil || len(out) != 0 {
		t.Fatalf("Load(nil) = %v, %v", out, err)
	}
}

func TestLoaded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "modules")
	os.WriteFile(p, []byte("virtio_blk 28672 0 - Live 0x0000000000000000\nerofs 118784 1 - Live 0x0\n"), 0o644)
	m, err := Loaded(p)
	if err != nil || !m["virtio_blk"] || !m["erofs"] || len(m) != 2 {
		t.Fatalf("Loaded = %v, %v", m, err)
	}
}
