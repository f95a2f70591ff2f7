package disk

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// ModelPartitionName is the GPT partition name init looks for.
const ModelPartitionName = "kwyre-model"

// ESPPartitionName names the EFI system partition: the watchdog finds the
// boot medium by it. Firmware goes by the partition type, not the name; a
// name of Kwyre's own keeps a laptop's internal ESP (Windows names its
// "EFI system partition") from making the lookup ambiguous.
const ESPPartitionName = "kwyre-esp"

// readOnlyAttr is GPT attribute bit 60: the partition is read-only.
const readOnlyAttr = 1 << 60

// Part is one partition's content.
type Part struct {
	Name  string
	Type  gpt.Type
	File  string // filesystem image
	Attrs uint64
	GUID  string // derived from content by WriteGPT when empty
}

// ESP returns the EFI system partition entry for the image file.
func ESP(file string) Part {
	return Part{Name: ESPPartitionName, Type: gpt.EFISystemPartition, File: file}
}

// Model returns the read-only model partition entry for the image file.
func Model(file string) Part {
	return Part{Name: ModelPartitionName, Type: gpt.LinuxFilesystem, File: file, Attrs: readOnlyAttr}
}

// GUIDFrom derives a stable RFC 4122 (version 4 layout) GUID from data.
func GUIDFrom(data ...[]byte) string {
	h := sha256.New()
	for _, d := range data {
		h.Write(d)
	}
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func fileHash(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// WriteGPT writes a GPT disk image to out: a protective MBR, the primary
// and backup GPT, and the partitions in order, each 1 MiB aligned. Partition
// GUIDs come from each partition's content, the disk GUID from all of them.
// It returns the disk's size.
func WriteGPT(out string, parts []Part) (int64, error) {
	const sector = 512
	start := int64(mib)
	var table []*gpt.Partition
	var hashes [][]byte
	var sizes []int64
	for i, p := range parts {
		st, err := os.Stat(p.File)
		if err != nil {
			return 0, fmt.Errorf("partition %s: %w", p.Name, err)
		}
		size := alignUp(st.Size(), mib)
		sizes = append(sizes, st.Size())
		sum, err := fileHash(p.File)
		if err != nil {
			return 0, fmt.Errorf("partition %s: %w", p.Name, err)
		}
		hashes = append(hashes, sum)
		guid := p.GUID
		if guid == "" {
			guid = GUIDFrom([]byte(p.Name), sum)
		}
		table = append(table, &gpt.Partition{
			Index:      i + 1,
			Start:      uint64(start / sector),
			End:        uint64((start+size)/sector - 1),
			Size:       uint64(size),
			Type:       p.Type,
			Name:       p.Name,
			GUID:       guid,
			Attributes: p.Attrs,
		})
		start += size
	}
	// Room for the backup GPT (33 sectors), rounded to a whole MiB.
	total := start + mib
	tmp := out + ".tmp"
	os.Remove(tmp)
	d, err := diskfs.Create(tmp, total, diskfs.SectorSize512)
	if err != nil {
		return 0, fmt.Errorf("create disk image: %w", err)
	}
	defer os.Remove(tmp)
	fail := func(err error) (int64, error) {
		d.Close()
		return 0, err
	}
	if err := d.Partition(&gpt.Table{
		Partitions:         table,
		LogicalSectorSize:  sector,
		PhysicalSectorSize: sector,
		GUID:               GUIDFrom(append([][]byte{[]byte("kwyre disk")}, hashes...)...),
		ProtectiveMBR:      true,
	}); err != nil {
		return fail(fmt.Errorf("write GPT: %w", err))
	}
	for i, p := range parts {
		f, err := os.Open(p.File)
		if err != nil {
			return fail(fmt.Errorf("partition %s: %w", p.Name, err))
		}
		// go-diskfs wants the whole partition: pad to its aligned size.
		pad := io.LimitReader(zeros{}, int64(table[i].Size)-sizes[i])
		_, err = d.WritePartitionContents(i+1, io.MultiReader(f, pad))
		f.Close()
		if err != nil {
			return fail(fmt.Errorf("write partition %s: %w", p.Name, err))
		}
	}
	if err := d.Close(); err != nil {
		return 0, fmt.Errorf("close disk image: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return 0, fmt.Errorf("disk image: %w", err)
	}
	return total, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
