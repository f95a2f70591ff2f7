package kernel

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// fakeBzImage builds the parts of a bzImage this package reads: a setup
// header with kernel_version, and a zstd payload followed by its size.
func fakeBzImage(t *testing.T, version string, payload []byte) []byte {
	t.Helper()
	const sects = 3
	img := make([]byte, (sects+1)*512)
	img[offSetupSects] = sects
	copy(img[offHeaderMagic:], "HdrS")
	binary.LittleEndian.PutUint16(img[offProtocol:], 0x020f)
	copy(img[0x400:], version+"\x00")
	binary.LittleEndian.PutUint16(img[offKernelVersion:], 0x400-0x200)
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	comp := enc.EncodeAll(payload, nil)
	comp = binary.LittleEndian.AppendUint32(comp, uint32(len(payload)))
	pm := []byte("protected-mode code ")
	binary.LittleEndian.PutUint32(img[offPayloadOffset:], uint32(len(pm)))
	binary.LittleEndian.PutUint32(img[offPayloadLength:], uint32(len(comp)))
	img = append(img, pm...)
	return append(img, comp...)
}

func TestParse(t *testing.T) {
	payload := bytes.Repeat([]byte("vmlinux "), 1000)
	payload = append(payload, "-----certificate DER-----"...)
	im, err := Parse(fakeBzImage(t, "6.1.192-kwyre (kwyre@kwyre) #1 SMP", payload))
	if err != nil {
		t.Fatal(err)
	}
	if im.Release != "6.1.192-kwyre" {
		t.Errorf("Release = %q", im.Release)
	}
	for _, tc := range []struct {
		needle string
		want   bool
	}{{"certificate DER", true}, {"another key", false}} {
		got, err := im.Contains([]byte(tc.needle))
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Contains(%q) = %v, want %v", tc.needle, got, tc.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := fakeBzImage(t, "6.1.0", []byte("x"))
	noVersion := bytes.Clone(good)
	binary.LittleEndian.PutUint16(noVersion[offKernelVersion:], 0)
	blank := fakeBzImage(t, " ", []byte("x"))
	for name, data := range map[string][]byte{
		"short":      good[:0x100],
		"no HdrS":    append(make([]byte, 0x300), good[0x300:]...),
		"no version": noVersion,
		"blank":      blank,
	} {
		if _, err := Parse(data); err == nil {
			t.Errorf("%s: Parse succeeded", name)
		}
	}
}

// TestRealKernels reads the kernels the build leaves in build/ when they
// are there: the release must match what the build wrote beside them, and
// our kernel must carry its module signing certificate.
func TestRealKernels(t *testing.T) {
	build := filepath.Join("..", "..", "build")
	for _, k := range []struct{ kernel, release, cert string }{
		{"vmlinuz-kwyre", "kwyre-modules/version", "kernel-keys/signing_key.x509"},
		{"debian-kernel/vmlinuz", "debian-kernel/version", ""},
	} {
		t.Run(k.kernel, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(build, k.release))
			if err != nil {
				t.Skipf("no built kernel: %v", err)
			}
			im, err := Open(filepath.Join(build, k.kernel))
			if err != nil {
				t.Fatal(err)
			}
			if im.Release != strings.TrimSpace(string(want)) {
				t.Errorf("Release = %q, want %q", im.Release, want)
			}
			if k.cert == "" || testing.Short() {
				return
			}
			cert, err := os.ReadFile(filepath.Join(build, k.cert))
			if err != nil {
				t.Skip(err)
			}
			ok, err := im.Contains(cert)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				t.Errorf("%s does not carry %s", k.kernel, k.cert)
			}
		})
	}
}
