// Package kernel reads what the image builder needs to know from an x86
// kernel image (a bzImage): the release it reports (uname -r), and whether
// its compressed payload carries given bytes, such as the certificate of
// the key its modules must be signed with.
//
// The release comes from the boot protocol's kernel_version string, which
// the kernel's own build writes into the setup header: it belongs to the
// very file the image boots, whatever folder it was copied from.
package kernel

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Offsets in the boot protocol's setup header (Documentation/x86/boot.rst).
const (
	offSetupSects    = 0x1f1
	offHeaderMagic   = 0x202
	offProtocol      = 0x206
	offKernelVersion = 0x20e
	offPayloadOffset = 0x248
	offPayloadLength = 0x24c
	headerEnd        = 0x250
)

// Image is a kernel image read into memory.
type Image struct {
	Path     string
	Release  string // first word of Version: what uname -r prints
	Version  string // the whole kernel_version string
	Protocol uint16 // boot protocol version, e.g. 0x020f
	data     []byte
}

// Open reads and parses the bzImage at path.
func Open(path string) (*Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	im, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", path, err)
	}
	im.Path = path
	return im, nil
}

// Parse parses a bzImage held in memory.
func Parse(data []byte) (*Image, error) {
	if len(data) < headerEnd || string(data[offHeaderMagic:offHeaderMagic+4]) != "HdrS" {
		return nil, errors.New("not an x86 bzImage (no HdrS setup header)")
	}
	im := &Image{data: data, Protocol: binary.LittleEndian.Uint16(data[offProtocol:])}
	if im.Protocol < 0x0200 {
		return nil, fmt.Errorf("boot protocol %#x has no kernel_version field", im.Protocol)
	}
	ptr := int(binary.LittleEndian.Uint16(data[offKernelVersion:]))
	if ptr == 0 {
		return nil, errors.New("setup header gives no kernel_version string")
	}
	start := ptr + 0x200
	if start >= len(data) {
		return nil, fmt.Errorf("kernel_version offset %#x is past the end of the file", start)
	}
	end := bytes.IndexByte(data[start:min(len(data), start+512)], 0)
	if end < 0 {
		return nil, errors.New("kernel_version string is not terminated")
	}
	im.Version = string(data[start : start+end])
	f := strings.Fields(im.Version)
	if len(f) == 0 || !printable(f[0]) {
		return nil, fmt.Errorf("kernel_version %q names no release", im.Version)
	}
	im.Release = f[0]
	return im, nil
}

func printable(s string) bool {
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return s != ""
}

// Payload returns the decompressed kernel (vmlinux) the bzImage carries.
// zstd and gzip payloads are supported.
func (im *Image) Payload() ([]byte, error) {
	if im.Protocol < 0x0208 {
		return nil, fmt.Errorf("boot protocol %#x has no payload fields", im.Protocol)
	}
	sects := int(im.data[offSetupSects])
	if sects == 0 {
		sects = 4
	}
	base := (sects + 1) * 512
	off := int(binary.LittleEndian.Uint32(im.data[offPayloadOffset:]))
	n := int(binary.LittleEndian.Uint32(im.data[offPayloadLength:]))
	if off < 0 || n <= 0 || base+off+n > len(im.data) {
		return nil, fmt.Errorf("payload (%d bytes at %#x) lies outside the file", n, base+off)
	}
	p := im.data[base+off : base+off+n]
	switch {
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		// The kernel's build appends the uncompressed size (4 bytes) after
		// the zstd frame; the frame alone is decoded.
		dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		out, err := dec.DecodeAll(p[:len(p)-4], nil)
		if err != nil {
			return nil, fmt.Errorf("decompress zstd payload: %w", err)
		}
		return out, nil
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		r, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("gzip payload: %w", err)
		}
		r.Multistream(false)
		out, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("decompress gzip payload: %w", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("payload compression not supported (magic % x): build the kernel with KERNEL_ZSTD or KERNEL_GZIP", p[:min(len(p), 6)])
	}
}

// Contains reports whether the decompressed kernel holds b (a DER
// certificate the kernel builds into its keyring appears there verbatim).
func (im *Image) Contains(b []byte) (bool, error) {
	p, err := im.Payload()
	if err != nil {
		return false, err
	}
	return bytes.Contains(p, b), nil
}
