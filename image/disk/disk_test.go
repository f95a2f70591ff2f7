package disk

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// build writes an ESP and an erofs model partition from fixed inputs and
// the disk around them.
func build(t *testing.T, dir string) string {
	t.Helper()
	efi := filepath.Join(dir, "in.efi")
	if err := os.WriteFile(efi, bytes.Repeat([]byte("MZ efi "), 70000), 0o644); err != nil {
		t.Fatal(err)
	}
	esp := filepath.Join(dir, "esp.img")
	if _, err := WriteESP(esp, efi, 0x4b575952); err != nil {
		t.Fatal(err)
	}
	mdir := filepath.Join(dir, "model")
	os.MkdirAll(mdir, 0o755)
	if err := os.WriteFile(filepath.Join(mdir, "model.gguf"), bytes.Repeat([]byte("GGUF"), 300000), 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.erofs")
	if _, err := WriteModelFS("erofs", model, mdir, "6b777972-652d-4d6f-8465-6c0000000001"); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "kwyre.img")
	if _, err := WriteGPT(img, []Part{ESP(esp), Model(model)}); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestDiskReproducibleAndReadable(t *testing.T) {
	need(t, "mkfs.vfat", "mmd", "mcopy", "mkfs.erofs", "fsck.fat")
	a, b := t.TempDir(), t.TempDir()
	imgA := build(t, a)
	imgB := build(t, b)
	da, _ := os.ReadFile(imgA)
	db, _ := os.ReadFile(imgB)
	if !bytes.Equal(da, db) {
		t.Fatal("two disks from the same inputs differ")
	}
	if out, err := exec.Command("fsck.fat", "-n", filepath.Join(a, "esp.img")).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat rejects the ESP: %v\n%s", err, out)
	}
	if out, err := exec.Command("mdir", "-i", filepath.Join(a, "esp.img"), "::EFI/BOOT/BOOTX64.EFI").CombinedOutput(); err != nil {
		t.Errorf("ESP has no EFI/BOOT/BOOTX64.EFI: %v\n%s", err, out)
	}

	d, err := diskfs.Open(imgA, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pt, err := d.GetPartitionTable()
	if err != nil {
		t.Fatal(err)
	}
	table := pt.(*gpt.Table)
	if !table.ProtectiveMBR {
		t.Error("no protective MBR")
	}
	if len(table.Partitions) != 2 {
		t.Fatalf("%d partitions, want 2", len(table.Partitions))
	}
	tests := []struct {
		typ  gpt.Type
		name string
		ro   bool
	}{
		{gpt.EFISystemPartition, ESPPartitionName, false},
		{gpt.LinuxFilesystem, ModelPartitionName, true},
	}
	for i, tc := range tests {
		p := table.Partitions[i]
		if p.Type != tc.typ || p.Name != tc.name || (p.Attributes&readOnlyAttr != 0) != tc.ro {
			t.Errorf("partition %d = %s %q attrs %#x, want %s %q read-only=%v", i+1, p.Type, p.Name, p.Attributes, tc.typ, tc.name, tc.ro)
		}
		if p.Start%2048 != 0 {
			t.Errorf("partition %d starts at sector %d, not 1 MiB aligned", i+1, p.Start)
		}
	}
	// The backup GPT header sits in the disk's last sector.
	if sig := da[len(da)-512 : len(da)-512+8]; string(sig) != "EFI PART" {
		t.Errorf("no backup GPT header in the last sector: %q", sig)
	}
	// The model partition's bytes are the erofs image.
	model, _ := os.ReadFile(filepath.Join(a, "model.erofs"))
	off := int64(table.Partitions[1].Start) * 512
	if !bytes.Equal(da[off:off+int64(len(model))], model) {
		t.Error("model partition content differs from the erofs image")
	}
}

func TestWriteModelFSRejectsUnknown(t *testing.T) {
	if _, err := WriteModelFS("ext4", filepath.Join(t.TempDir(), "x"), t.TempDir(), "x"); err == nil {
		t.Fatal("WriteModelFS accepted ext4")
	}
}

func TestGUIDFrom(t *testing.T) {
	a, b := GUIDFrom([]byte("x")), GUIDFrom([]byte("y"))
	if a == b || a != GUIDFrom([]byte("x")) || len(a) != 36 || a[14] != '4' {
		t.Errorf("GUIDFrom: %s %s", a, b)
	}
}
