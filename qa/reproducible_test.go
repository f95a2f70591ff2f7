package qa

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func sha(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

// TestReproducibleImage builds the image twice from the same inputs, once
// with the model in the initramfs and once on its partition, and requires
// byte-identical outputs.
func TestReproducibleImage(t *testing.T) {
	imageDir(t)
	model := demoModel(t)
	for _, mode := range []string{"never", "always"} {
		t.Run("partition="+mode, func(t *testing.T) {
			a := buildImage(t, model, "-model-partition", mode)
			b := buildImage(t, model, "-model-partition", mode)
			for _, f := range []string{"initramfs.cpio.zst", "kwyre.efi", "kwyre.img"} {
				if !bytes.Equal(sha(t, filepath.Join(a, f)), sha(t, filepath.Join(b, f))) {
					t.Errorf("%s differs between two builds from the same inputs", f)
				}
			}
		})
	}
}
