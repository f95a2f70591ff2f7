package gguf_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kwyre/kwyre/services/inference/gguf"
)

func TestSHA256(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 1 << 20, 3<<20 + 7} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		got, err := gguf.SHA256(p)
		if err != nil || got != hex.EncodeToString(sum[:]) {
			t.Errorf("%d bytes: %s, %v", size, got, err)
		}
	}
	if _, err := gguf.SHA256(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
