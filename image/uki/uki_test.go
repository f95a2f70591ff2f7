package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestChecksumMatchesObjcopy checks peChecksum against the checksum objcopy
// itself writes.
func TestChecksumMatchesObjcopy(t *testing.T) {
	if _, err := os.Stat(DefaultStub); err != nil {
		t.Skip("no systemd EFI stub")
	}
	if _, err := exec.LookPath("objcopy"); err != nil {
		t.Skip("no objcopy")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "x.efi")
	if b, err := exec.Command("objcopy", "--add-section", ".osrel=/dev/null", DefaultStub, out).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	off := int(binary.LittleEndian.Uint32(b[0x3c:])) + 24 + 64
	want := binary.LittleEndian.Uint32(b[off:])
	if got := peChecksum(b, off); got != want {
		t.Errorf("peChecksum = %#x, objcopy wrote %#x", got, want)
	}
}

// TestBuildDeterministicAndLaidOut builds a UKI twice and checks the bytes
// match and that the added sections follow the stub's without overlap.
func TestBuildDeterministicAndLaidOut(t *testing.T) {
	if _, err := os.Stat(DefaultStub); err != nil {
		t.Skip("no systemd EFI stub")
	}
	dir := t.TempDir()
	kernel := filepath.Join(dir, "kernel")
	initrd := filepath.Join(dir, "initrd")
	os.WriteFile(kernel, bytes.Repeat([]byte{1}, 5000), 0o644)
	os.WriteFile(initrd, bytes.Repeat([]byte{2}, 3000), 0o644)
	secs, err := WriteSections(dir, OSRelease("test"), "quiet", kernel, initrd)
	if err != nil {
		t.Fatal(err)
	}
	var outs [][]byte
	for i := range 2 {
		out := filepath.Join(dir, "k"+string(rune('0'+i))+".efi")
		if err := Build(DefaultStub, out, secs); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatal("two UKI builds from the same inputs differ")
	}
	f, err := pe.NewFile(bytes.NewReader(outs[0]))
	if err != nil {
		t.Fatal(err)
	}
	if f.FileHeader.TimeDateStamp != 0 {
		t.Errorf("TimeDateStamp = %d, want 0", f.FileHeader.TimeDateStamp)
	}
	var prevEnd uint32
	names := map[string]bool{}
	for _, s := range f.Sections {
		if s.VirtualAddress < prevEnd {
			t.Errorf("section %s at %#x overlaps the previous one ending at %#x", s.Name, s.VirtualAddress, prevEnd)
		}
		size := s.VirtualSize
		if size == 0 {
			size = s.Size
		}
		prevEnd = s.VirtualAddress + size
		names[s.Name] = true
	}
	for _, n := range []string{".osrel", ".cmdline", ".linux", ".initrd"} {
		if !names[n] {
			t.Errorf("section %s missing", n)
		}
	}
	cmd := f.Section(".cmdline")
	data, _ := cmd.Data()
	if !bytes.HasPrefix(data, []byte("quiet")) {
		t.Errorf(".cmdline = %q", data)
	}
}
