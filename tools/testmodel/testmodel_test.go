package testmodel

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kwyre/kwyre/services/inference/gguf"
)

// headWriter keeps the first bytes written (the GGUF header) and counts the rest.
type headWriter struct {
	head  []byte
	limit int
	n     int64
	hash  io.Writer
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.limit - len(w.head); room > 0 {
		w.head = append(w.head, p[:min(room, len(p))]...)
	}
	w.n += int64(len(p))
	if w.hash != nil {
		w.hash.Write(p)
	}
	return len(p), nil
}

func TestPresetsPassCheck(t *testing.T) {
	want := map[string]struct{ embd, layers, heads, kv, ff, vocab int }{
		"demo":        {128, 2, 4, 2, 256, 0},
		"tiny":        {64, 2, 4, 2, 256, 512},
		"small":       {256, 4, 8, 4, 768, 2048},
		"llama3.2-1b": {2048, 16, 32, 8, 8192, 128256},
		"llama3-8b":   {4096, 32, 32, 8, 14336, 128256},
	}
	for _, p := range Presets() {
		for _, typ := range Types() {
			if p == "demo" && typ == "q4_k_m" {
				continue
			}
			big := strings.HasPrefix(p, "llama3")
			if big && testing.Short() {
				continue
			}
			if big && typ != "q4_0" && typ != "q4_k_m" {
				continue // tens of GB of float weights; the shapes are the same
			}
			t.Run(p+"/"+typ, func(t *testing.T) {
				w := &headWriter{limit: 32 << 20}
				if err := Write(w, Options{Preset: p, Type: typ, Seed: 3}); err != nil {
					t.Fatal(err)
				}
				info, err := gguf.CheckReader(bytes.NewReader(w.head), w.n)
				if err != nil {
					t.Fatal(err)
				}
				s := want[p]
				if int(info.EmbeddingLen) != s.embd || int(info.BlockCount) != s.layers || int(info.HeadCount) != s.heads ||
					int(info.HeadCountKV) != s.kv || (s.vocab != 0 && int(info.VocabSize) != s.vocab) || info.Arch != "llama" {
					t.Errorf("info %+v, want %+v", info, s)
				}
				t.Logf("%s %s: %d tensors, %.1f MB", p, typ, info.TensorCount, float64(w.n)/1e6)
			})
		}
	}
}

func TestSameSeedSameBytes(t *testing.T) {
	sum := func(o Options) [32]byte {
		h := sha256.New()
		if err := Write(h, o); err != nil {
			t.Fatal(err)
		}
		return [32]byte(h.Sum(nil))
	}
	for _, p := range []string{"tiny", "demo", "small"} {
		for _, typ := range []string{"f16", "q4_0"} {
			a := sum(Options{Preset: p, Type: typ, Seed: 42})
			if b := sum(Options{Preset: p, Type: typ, Seed: 42}); a != b {
				t.Errorf("%s/%s: same seed gave different bytes", p, typ)
			}
			if b := sum(Options{Preset: p, Type: typ, Seed: 43}); a == b {
				t.Errorf("%s/%s: different seeds gave the same bytes", p, typ)
			}
		}
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{
		{Preset: "huge"},
		{Preset: "tiny", Type: "q3_k"},
		{Preset: "demo", Type: "q4_k_m"},
	} {
		err := Write(io.Discard, o)
		if err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	// WriteFile leaves nothing behind when it fails.
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "m.gguf"), Options{Preset: "huge"}); err == nil {
		t.Fatal("bad preset accepted")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed WriteFile left %v", ents)
	}
}

func TestVocabulary(t *testing.T) {
	v, err := buildVocab(512)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.tokens) != 512 {
		t.Fatalf("%d tokens", len(v.tokens))
	}
	for i, s := range []string{TokenEndOfText, TokenIMStart, TokenIMEnd} {
		id := 509 + i
		if v.tokens[id] != s || v.types[id] != gguf.TokenControl {
			t.Errorf("token %d = %q type %d, want %q CONTROL", id, v.tokens[id], v.types[id], s)
		}
	}
	if v.tokens['\n'] != "Ċ" || v.tokens[' '] != "Ġ" || v.tokens['A'] != "A" {
		t.Errorf("byte tokens not in GPT-2's mapping: %q %q %q", v.tokens['\n'], v.tokens[' '], v.tokens['A'])
	}
	// Every merge joins two existing tokens into an existing token.
	for _, m := range v.merges {
		a, b, ok := strings.Cut(m, " ")
		_, okA := v.index[a]
		_, okB := v.index[b]
		_, okAB := v.index[a+b]
		if !ok || !okA || !okB || !okAB {
			t.Errorf("merge %q does not join vocabulary tokens", m)
		}
	}
	if _, err := buildVocab(100); err == nil {
		t.Error("a vocabulary larger than its size was accepted")
	}
	// The demo chain's tokens are distinct, so each has exactly one successor.
	chain := demoChain(v)
	seen := map[int]bool{}
	for _, id := range chain {
		if seen[id] {
			t.Errorf("token %d (%q) twice in the demo chain", id, v.tokens[id])
		}
		seen[id] = true
	}
	if len(chain) != len(strings.Fields(DemoReply))+2 {
		t.Errorf("chain of %d tokens for %d words", len(chain), len(strings.Fields(DemoReply)))
	}
}

func TestHadamardRowsOrthogonal(t *testing.T) {
	for i := 1; i <= 20; i++ {
		for j := 1; j <= 20; j++ {
			var dot float32
			a, b := hadamard(i, 128), hadamard(j, 128)
			for k := range a {
				dot += a[k] * b[k]
			}
			if (i == j && dot != 128) || (i != j && dot != 0) {
				t.Fatalf("rows %d·%d = %v", i, j, dot)
			}
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, c := range []struct{ preset, typ string }{
		{"demo", "f16"}, {"tiny", "f16"}, {"tiny", "q4_0"}, {"small", "f16"}, {"small", "q8_0"},
		{"llama3.2-1b", "q4_0"}, {"llama3.2-1b", "q4_k_m"}, {"llama3-8b", "q4_0"}, {"llama3-8b", "q4_k_m"},
	} {
		b.Run(fmt.Sprintf("%s/%s", c.preset, c.typ), func(b *testing.B) {
			var n int64
			for b.Loop() {
				w := &headWriter{}
				if err := Write(w, Options{Preset: c.preset, Type: c.typ, Seed: 1}); err != nil {
					b.Fatal(err)
				}
				n = w.n
			}
			b.SetBytes(n)
			b.ReportMetric(float64(n)/1e6, "MB/model")
		})
	}
}
