package llamacheck

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/kwyre/kwyre/services/inference/gguf"
	"github.com/kwyre/kwyre/tools/testmodel"
	"github.com/ollama/ollama/llama"
)

// rewrite copies the GGUF at src to dst with its metadata edited.
func rewrite(t *testing.T, src, dst string, edit func([]gguf.KV) []gguf.KV) {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := gguf.NewWriter(&out, edit(slices.Clone(f.KV)), f.Tensors)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range f.Tensors {
		size, _ := ti.Size()
		start := f.DataOffset + ti.Offset
		if _, err := w.Write(data[start : start+size]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func set(key string, v any) func([]gguf.KV) []gguf.KV {
	return func(kvs []gguf.KV) []gguf.KV {
		for i := range kvs {
			if kvs[i].Key == key {
				if v == nil {
					return slices.Delete(kvs, i, i+1)
				}
				kvs[i].Value = v
				return kvs
			}
		}
		return append(kvs, gguf.KV{Key: key, Value: v})
	}
}

func editTokens(f func(toks []string)) func([]gguf.KV) []gguf.KV {
	return func(kvs []gguf.KV) []gguf.KV {
		for i := range kvs {
			if kvs[i].Key == gguf.KeyTokens {
				toks := slices.Clone(kvs[i].Value.([]string))
				f(toks)
				kvs[i].Value = toks
			}
		}
		return kvs
	}
}

// TestMalformedModels writes models whose metadata is wrong in ways the
// GGUF structure allows, loads each with llama.cpp in a child process (some
// of them abort or crash it) and checks that gguf.Check refuses every one
// before llama.cpp would see it. llama.cpp's own outcome is logged.
func TestMalformedModels(t *testing.T) {
	if os.Getenv("KWYRE_LLAMA_CHILD") != "" {
		return // the child's work is done in TestMain
	}
	dir := t.TempDir()
	valid := filepath.Join(dir, "tiny.gguf")
	if err := testmodel.WriteFile(valid, testmodel.Options{Preset: "tiny", Type: "f16", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func([]gguf.KV) []gguf.KV
		want error
	}{
		{"duplicate token text", editTokens(func(toks []string) { toks[300] = toks[65] }), gguf.ErrVocab},
		{"tokens not strings", set(gguf.KeyTokens, make([]int32, 512)), gguf.ErrVocab},
		{"token types short", set(gguf.KeyTokenType, make([]int32, 10)), gguf.ErrVocab},
		{"scores short", set(gguf.KeyScores, make([]float32, 10)), gguf.ErrVocab},
		{"token types not int32", set(gguf.KeyTokenType, make([]uint8, 512)), gguf.ErrVocab},
		{"eos outside vocabulary", set(gguf.KeyEOS, uint32(100000)), gguf.ErrVocab},
		{"no merges", set(gguf.KeyMerges, nil), gguf.ErrVocab},
		{"head count zero", set("llama.attention.head_count", uint32(0)), gguf.ErrHyperparam},
		{"kv head count zero", set("llama.attention.head_count_kv", uint32(0)), gguf.ErrHyperparam},
		{"block count huge", set("llama.block_count", uint32(100000)), gguf.ErrHyperparam},
		{"embedding length disagrees", set("llama.embedding_length", uint32(128)), gguf.ErrShape},
		{"context length missing", set("llama.context_length", nil), gguf.ErrHyperparam},
		{"rms epsilon missing", set("llama.attention.layer_norm_rms_epsilon", nil), gguf.ErrHyperparam},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".gguf")
			rewrite(t, valid, path, c.edit)
			_, err := gguf.Check(path)
			if !errors.Is(err, c.want) {
				t.Errorf("gguf.Check: %v, want %v", err, c.want)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "KWYRE_LLAMA_CHILD="+path)
			out, runErr := cmd.CombinedOutput()
			t.Logf("gguf.Check: %v", err)
			t.Logf("llama.cpp: %s", childOutcome(runErr, out))
		})
	}
}

func childOutcome(err error, out []byte) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("process killed by %v", ws.Signal())
		}
	}
	// A C abort or fault inside cgo ends the Go runtime with a signal dump.
	text := string(out)
	for _, sig := range []string{"SIGABRT", "SIGSEGV", "SIGFPE", "SIGBUS"} {
		if strings.Contains(text, sig+":") {
			why := ""
			for _, l := range strings.Split(text, "\n") {
				if strings.Contains(l, "GGML_ASSERT") || strings.Contains(l, "terminate called") {
					why = ": " + strings.TrimSpace(l)
					break
				}
			}
			return "process crashed with " + sig + why
		}
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	return lines[len(lines)-1]
}

// loadInChild is the child side of TestMalformedModels: load the model and
// decode one token, printing what happened on the last line.
func loadInChild(path string) {
	llama.BackendInit()
	m, err := llama.LoadModelFromFile(path, llama.ModelParams{UseMmap: true})
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	ctx, err := llama.NewContextWithModel(m, llama.NewContextParams(64, 64, 1, 1, 0, ""))
	if err != nil {
		fmt.Println("loaded, context refused:", err)
		return
	}
	toks, err := m.Tokenize("<|im_start|>user\nhi<|im_end|>\n", false, true)
	if err != nil || len(toks) == 0 {
		fmt.Println("loaded, tokenizer failed:", err)
		return
	}
	b, _ := llama.NewBatch(len(toks), 1, 0)
	for i, tok := range toks {
		b.Add(tok, nil, i, i == len(toks)-1, 0)
	}
	if err := ctx.Decode(b); err != nil {
		fmt.Println("loaded, decode failed:", err)
		return
	}
	fmt.Println("loaded and decoded (accepted the malformed model)")
}
