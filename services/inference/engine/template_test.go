package engine

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kwyre/kwyre/services/inference/gguf"
)

// rewriteModel copies the GGUF at src to a new file with its metadata
// passed through edit, tensor data unchanged.
func rewriteModel(t *testing.T, src string, edit func([]gguf.KV) []gguf.KV) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "edited.gguf")
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	infos := slices.Clone(f.Tensors)
	w, err := gguf.NewWriter(out, edit(slices.Clone(f.KV)), infos)
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, ti := range f.Tensors {
		n, err := ti.Type.RowSize(ti.Shape[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ti.Shape[1:] {
			n *= d
		}
		buf := make([]byte, n)
		if _, err := in.ReadAt(buf, int64(f.DataOffset+ti.Offset)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func setKV(kvs []gguf.KV, key string, v any) []gguf.KV {
	for i := range kvs {
		if kvs[i].Key == key {
			if v == nil {
				return slices.Delete(kvs, i, i+1)
			}
			kvs[i].Value = v
			return kvs
		}
	}
	if v != nil {
		kvs = append(kvs, gguf.KV{Key: key, Value: v})
	}
	return kvs
}

func TestChatTemplateFallback(t *testing.T) {
	src := modelFile(t, "tiny")
	renameIMStart := func(kvs []gguf.KV) []gguf.KV {
		for i := range kvs {
			if kvs[i].Key == gguf.KeyTokens {
				toks := slices.Clone(kvs[i].Value.([]string))
				for j, s := range toks {
					if s == "<|im_start|>" {
						toks[j] = "<|xx_start|>"
					}
				}
				kvs[i].Value = toks
			}
		}
		return kvs
	}
	for _, c := range []struct {
		name string
		edit func([]gguf.KV) []gguf.KV
		want string // Info.ChatTemplate
	}{
		{"own template", func(k []gguf.KV) []gguf.KV { return k }, "model"},
		{"no template", func(k []gguf.KV) []gguf.KV { return setKV(k, gguf.KeyChatTemplate, nil) }, "chatml"},
		{"unknown template", func(k []gguf.KV) []gguf.KV {
			return setKV(k, gguf.KeyChatTemplate, "{% for m in messages %}{{ m.content }}{% endfor %}")
		}, "chatml"},
		{"no template, no known tokens", func(k []gguf.KV) []gguf.KV {
			return renameIMStart(setKV(k, gguf.KeyChatTemplate, nil))
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := Load(Config{ModelPath: rewriteModel(t, src, c.edit), Slots: 1, ContextSize: 64, Threads: 1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if got := e.Info().ChatTemplate; got != c.want {
				t.Errorf("template %q, want %q", got, c.want)
			}
			text, err := e.RenderChat([]Message{{Role: "user", Content: []byte("hi")}}, true, nil)
			if c.want == "" {
				if !errors.Is(err, ErrNoChatTemplate) {
					t.Errorf("render without a template: %q, %v", text, err)
				}
				return
			}
			if err != nil || string(text) != "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" {
				t.Errorf("render: %q, %v", text, err)
			}
		})
	}
}
