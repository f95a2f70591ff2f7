package manifest

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// benchTree writes an image-like tree once per benchmark run: many small
// files (binaries, libraries) and one large one (the model). Its size in MiB
// comes from KWYRE_BENCH_MB (default 256). The page cache is warm for all
// three measurements, so they compare CPU cost, not the disk.
func benchTree(b *testing.B) (root string, files []string, total int64) {
	b.Helper()
	mb := 256
	if v := os.Getenv("KWYRE_BENCH_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 8 {
			b.Fatalf("KWYRE_BENCH_MB=%q: want a number >= 8", v)
		}
		mb = n
	}
	root = b.TempDir()
	small := 64
	smallSize := (mb << 20) / 2 / small
	chunk := make([]byte, 1<<20)
	if _, err := rand.Read(chunk); err != nil {
		b.Fatal(err)
	}
	writeFile := func(rel string, size int) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			b.Fatal(err)
		}
		for left := size; left > 0; left -= len(chunk) {
			n := min(left, len(chunk))
			if _, err := f.Write(chunk[:n]); err != nil {
				b.Fatal(err)
			}
			chunk[0]++ // no two chunks alike
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		files = append(files, rel)
		total += int64(size)
	}
	for i := 0; i < small; i++ {
		writeFile(filepath.Join("lib", "lib"+strconv.Itoa(i)+".so"), smallSize)
	}
	writeFile("model/model.gguf", (mb<<20)-small*smallSize)
	return root, files, total
}

// BenchmarkVerify compares, on the same files in one run: Verify (parallel
// SHA-256 plus the extra-executable walk), coreutils sha256sum over the same
// files, and a plain sequential read of them. Run with
//
//	go test -run - -bench Verify -benchtime 3x ./init/manifest
func BenchmarkVerify(b *testing.B) {
	root, files, total := benchTree(b)
	var m bytes.Buffer
	if err := Generate(root, &m); err != nil {
		b.Fatal(err)
	}

	b.Run("verify", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			if _, err := Verify(root, bytes.NewReader(m.Bytes())); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sha256sum", func(b *testing.B) {
		if _, err := exec.LookPath("sha256sum"); err != nil {
			b.Skip("sha256sum not installed")
		}
		b.SetBytes(total)
		for b.Loop() {
			cmd := exec.Command("sha256sum", files...)
			cmd.Dir = root
			cmd.Stdout = io.Discard
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read", func(b *testing.B) {
		b.SetBytes(total)
		buf := make([]byte, bufSize)
		for b.Loop() {
			for _, rel := range files {
				f, err := os.Open(filepath.Join(root, rel))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, onlyReader{f}, buf); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		}
	})
}
