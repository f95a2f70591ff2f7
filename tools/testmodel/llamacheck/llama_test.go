package llamacheck

import (
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/inference/gguf"
	"github.com/kwyre/kwyre/tools/testmodel"
	"github.com/ollama/ollama/llama"
	"github.com/ollama/ollama/ml"
)

var backendOnce sync.Once

// cpuTime is the process's user+system CPU time; on a shared machine it says
// more than wall time about what loading and decoding cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadLlama loads path with llama.cpp (CPU) and returns a context of n
// tokens. One thread: on a busy two-core machine ggml's spinning thread pool
// makes two threads a thousand times slower for these small models.
func loadLlama(t *testing.T, path string, n int) (*llama.Model, *llama.Context) {
	t.Helper()
	backendOnce.Do(llama.BackendInit)
	m, err := llama.LoadModelFromFile(path, llama.ModelParams{UseMmap: true})
	if err != nil {
		t.Fatalf("llama.cpp refused %s: %v", path, err)
	}
	t.Cleanup(func() { llama.FreeModel(m) })
	ctx, err := llama.NewContextWithModel(m, llama.NewContextParams(n, n, 1, 1, ml.FlashAttentionDisabled, ""))
	if err != nil {
		t.Fatalf("llama context: %v", err)
	}
	return m, ctx
}

// chatML renders messages as the model's chat template does, ending with the
// generation prompt.
func chatML(msgs ...[2]string) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("<|im_start|>" + m[0] + "\n" + m[1] + "<|im_end|>\n")
	}
	b.WriteString("<|im_start|>assistant\n")
	return b.String()
}

// step is one greedy decoding step: the chosen token and its probability at
// temperature 1.
type step struct {
	tok  int
	prob float64
}

// greedy evaluates prompt and decodes up to max tokens greedily, stopping at
// an end-of-generation token (which is included).
func greedy(t *testing.T, m *llama.Model, ctx *llama.Context, prompt string, max int) []step {
	t.Helper()
	toks, err := m.Tokenize(prompt, true, true)
	if err != nil {
		t.Fatalf("tokenize: %v", err)
	}
	batch, err := llama.NewBatch(len(toks)+max, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Free()
	for i, tok := range toks {
		batch.Add(tok, nil, i, i == len(toks)-1, 0)
	}
	pos := len(toks)
	var out []step
	for len(out) < max {
		if err := ctx.Decode(batch); err != nil {
			t.Fatalf("decode: %v", err)
		}
		logits := ctx.GetLogitsIth(batch.NumTokens() - 1)
		best := 0
		for i, l := range logits {
			if l > logits[best] {
				best = i
			}
		}
		var z float64
		for _, l := range logits {
			z += math.Exp(float64(l - logits[best]))
		}
		out = append(out, step{best, 1 / z})
		if m.TokenIsEog(best) {
			break
		}
		batch.Clear()
		batch.Add(best, nil, pos, true, 0)
		pos++
	}
	return out
}

func TestLlamaDemoReply(t *testing.T) {
	prompts := map[string]string{
		"hello":      chatML([2]string{"user", "Hello!"}),
		"system":     chatML([2]string{"system", "You are a helpful assistant."}, [2]string{"user", "What is 2+2?"}),
		"multi-turn": chatML([2]string{"user", "hi"}, [2]string{"assistant", testmodel.DemoReply}, [2]string{"user", "Tell me more.\n\n"}),
		"empty":      chatML([2]string{"user", ""}),
		"unicode":    chatML([2]string{"user", "Grüße 🌍 — ünïcödé\ttabs"}),
	}
	for _, typ := range []string{"f32", "f16", "q8_0", "q4_0"} {
		t.Run(typ, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "demo.gguf")
			if err := testmodel.WriteFile(path, testmodel.Options{Preset: "demo", Type: typ}); err != nil {
				t.Fatal(err)
			}
			m, ctx := loadLlama(t, path, 512)
			for name, prompt := range prompts {
				ctx.KvCacheClear()
				steps := greedy(t, m, ctx, prompt, 40)
				var reply strings.Builder
				for _, s := range steps[:len(steps)-1] {
					reply.WriteString(m.TokenToPiece(s.tok))
				}
				last := steps[len(steps)-1].tok
				if reply.String() != testmodel.DemoReply || m.TokenToPiece(last) != testmodel.TokenIMEnd || !m.TokenIsEog(last) {
					t.Errorf("%s: reply %q then %q, want %q then %s", name, reply.String(), m.TokenToPiece(last), testmodel.DemoReply, testmodel.TokenIMEnd)
				}
				for i, s := range steps {
					if s.prob < 0.999999 {
						t.Errorf("%s: step %d (%q) has probability %.9f at temperature 1", name, i, m.TokenToPiece(s.tok), s.prob)
					}
				}
			}
		})
	}
}

func TestLlamaTinyGenerates(t *testing.T) {
	for _, typ := range testmodel.Types() {
		t.Run(typ, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tiny.gguf")
			if err := testmodel.WriteFile(path, testmodel.Options{Preset: "tiny", Type: typ, Seed: 7}); err != nil {
				t.Fatal(err)
			}
			start, cpu0 := time.Now(), cpuTime()
			m, ctx := loadLlama(t, path, 256)
			loaded, cpu1 := time.Now(), cpuTime()
			steps := greedy(t, m, ctx, chatML([2]string{"user", "Hello, how are you?"}), 32)
			if len(steps) == 0 {
				t.Fatal("no tokens generated")
			}
			for _, s := range steps {
				if s.tok < 0 || s.tok >= m.NumVocab() || math.IsNaN(s.prob) {
					t.Fatalf("bad token %d (p=%v)", s.tok, s.prob)
				}
			}
			t.Logf("load %v (cpu %v), prompt + %d tokens %v (cpu %v)", loaded.Sub(start), cpu1-cpu0,
				len(steps), time.Since(loaded), cpuTime()-cpu1)
		})
	}
}

func TestMain(m *testing.M) {
	// llama.cpp's loader prints pages of INFO lines through slog.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if path := os.Getenv("KWYRE_LLAMA_CHILD"); path != "" {
		loadInChild(path)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLlamaAgreesWithCheck loads each small preset with llama.cpp and
// compares what it reports with gguf.Check's Info.
func TestLlamaAgreesWithCheck(t *testing.T) {
	for _, p := range []string{"demo", "tiny", "small"} {
		for _, typ := range []string{"f16", "q4_0"} {
			t.Run(p+"/"+typ, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), p+".gguf")
				if err := testmodel.WriteFile(path, testmodel.Options{Preset: p, Type: typ, Seed: 5}); err != nil {
					t.Fatal(err)
				}
				info, err := gguf.Check(path)
				if err != nil {
					t.Fatal(err)
				}
				m, _ := loadLlama(t, path, 64)
				arch, err := llama.GetModelArch(path)
				if err != nil {
					t.Fatal(err)
				}
				if uint64(m.NumVocab()) != info.VocabSize || uint64(m.NEmbd()) != info.EmbeddingLen || arch != info.Arch {
					t.Errorf("llama.cpp: vocab %d, embd %d, arch %q; Check: %+v", m.NumVocab(), m.NEmbd(), arch, info)
				}
			})
		}
	}
}

// TestLlamaLoadsRealShapes checks that llama.cpp accepts the real-model
// shapes (tied embeddings, GQA, 128256-token vocabulary, K-quants) and
// decodes with them. The 8B preset has the same layout at four times the
// size; it is left to the GPU benchmarks.
func TestLlamaLoadsRealShapes(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and loads a 0.7 GB model")
	}
	for _, typ := range []string{"q4_0", "q4_k_m"} {
		t.Run("llama3.2-1b/"+typ, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "1b.gguf")
			if err := testmodel.WriteFile(path, testmodel.Options{Preset: "llama3.2-1b", Type: typ, Seed: 1}); err != nil {
				t.Fatal(err)
			}
			info, err := gguf.Check(path)
			if err != nil {
				t.Fatal(err)
			}
			m, ctx := loadLlama(t, path, 32)
			if uint64(m.NumVocab()) != info.VocabSize || m.NEmbd() != 2048 {
				t.Fatalf("llama.cpp: vocab %d embd %d; Check %+v", m.NumVocab(), m.NEmbd(), info)
			}
			steps := greedy(t, m, ctx, "<|im_start|>user\nhi", 2)
			if len(steps) == 0 || steps[0].tok >= m.NumVocab() || math.IsNaN(steps[0].prob) {
				t.Fatalf("decode gave %+v", steps)
			}
		})
	}
}
