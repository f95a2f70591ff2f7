package testmodel

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/kwyre/kwyre/services/inference/gguf"
)

// tensor is one tensor to write and how to fill it.
type tensor struct {
	info gguf.TensorInfo
	fill func(w io.Writer) error
}

// Write generates the model o describes and writes it to w as GGUF.
func Write(w io.Writer, o Options) error {
	s, typ, err := o.resolve()
	if err != nil {
		return err
	}
	v, err := buildVocab(s.vocab)
	if err != nil {
		return err
	}
	name := o.Preset
	if name == "" {
		name = "tiny"
	}
	tensors := s.tensors(name, typ, v, o.Seed)
	infos := make([]gguf.TensorInfo, len(tensors))
	for i, t := range tensors {
		infos[i] = t.info
	}
	gw, err := gguf.NewWriter(w, s.metadata(name, typ, v), infos)
	if err != nil {
		return err
	}
	for _, t := range tensors {
		if err := t.fill(gw); err != nil {
			return fmt.Errorf("tensor %s: %w", t.info.Name, err)
		}
	}
	return gw.Close()
}

// WriteFile writes the model to path, through a temporary file in the same
// folder so a failed or interrupted write never leaves a partial model.
func WriteFile(path string, o Options) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".testmodel-*.gguf")
	if err != nil {
		return fmt.Errorf("create model file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := Write(f, o); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename model to %s: %w", path, err)
	}
	return nil
}

func fileType(typ string) uint32 {
	switch typ {
	case "f32":
		return gguf.FileTypeAllF32
	case "f16":
		return gguf.FileTypeMostlyF16
	case "q8_0":
		return gguf.FileTypeQ8_0
	case "q4_0":
		return gguf.FileTypeQ4_0
	}
	return gguf.FileTypeQ4_K_M
}

func (s shape) metadata(name, typ string, v *vocab) []gguf.KV {
	const a = "llama."
	kv := []gguf.KV{
		{Key: gguf.KeyArchitecture, Value: "llama"},
		{Key: gguf.KeyName, Value: "kwyre-testmodel " + name},
		{Key: gguf.KeyFileType, Value: fileType(typ)},
		{Key: a + gguf.SuffixVocabSize, Value: uint32(len(v.tokens))},
		{Key: a + gguf.SuffixContextLength, Value: uint32(s.ctx)},
		{Key: a + gguf.SuffixEmbeddingLen, Value: uint32(s.embd)},
		{Key: a + gguf.SuffixBlockCount, Value: uint32(s.layers)},
		{Key: a + gguf.SuffixFeedForward, Value: uint32(s.ff)},
		{Key: a + gguf.SuffixHeadCount, Value: uint32(s.heads)},
		{Key: a + gguf.SuffixHeadCountKV, Value: uint32(s.headsKV)},
		{Key: a + gguf.SuffixRMSEpsilon, Value: s.eps},
		{Key: a + gguf.SuffixRopeFreqBase, Value: s.ropeBase},
		{Key: a + gguf.SuffixRopeDimCount, Value: uint32(s.embd / s.heads)},
	}
	return append(kv, v.metadata()...)
}

// tensorType picks a matrix's storage type the way llama.cpp's quantizer
// does for the file type typ, falling back when the row length does not fit
// the block size.
func (s shape) tensorType(typ, role string, layer int, ne0 int) gguf.TensorType {
	var t gguf.TensorType
	switch typ {
	case "f32":
		t = gguf.TypeF32
	case "f16":
		t = gguf.TypeF16
	case "q8_0":
		t = gguf.TypeQ8_0
	case "q4_0":
		t = gguf.TypeQ4_0
	case "q4_k_m":
		t = gguf.TypeQ4_K
		n := s.layers
		moreBits := layer < n/8 || layer >= 7*n/8 || (layer-n/8)%3 == 2
		if role == "output" || ((role == "attn_v" || role == "ffn_down") && moreBits) {
			t = gguf.TypeQ6_K
		}
	}
	for _, fb := range []gguf.TensorType{t, gguf.TypeQ8_0, gguf.TypeF16} {
		if uint64(ne0)%fb.BlockSize() == 0 {
			return fb
		}
	}
	return gguf.TypeF16
}

func (s shape) tensors(name, typ string, v *vocab, seed uint64) []tensor {
	headDim := s.embd / s.heads
	kvDim := headDim * s.headsKV
	nv := len(v.tokens)
	var out []tensor
	mat := func(tname, role string, layer, ne0, ne1 int, fill func(t gguf.TensorInfo) func(io.Writer) error) {
		info := gguf.TensorInfo{Name: tname, Shape: []uint64{uint64(ne0), uint64(ne1)}, Type: s.tensorType(typ, role, layer, ne0)}
		out = append(out, tensor{info: info, fill: fill(info)})
	}
	norm := func(tname string) {
		info := gguf.TensorInfo{Name: tname, Shape: []uint64{uint64(s.embd)}, Type: gguf.TypeF32}
		out = append(out, tensor{info: info, fill: constRows(info, 1)})
	}
	random := func(t gguf.TensorInfo) func(io.Writer) error {
		scale := 1 / math.Sqrt(float64(t.Shape[0]))
		if t.Name == "token_embd.weight" {
			scale = 1
		}
		return randomFill(t, seed, float32(scale))
	}
	zero := func(t gguf.TensorInfo) func(io.Writer) error { return constRows(t, 0) }
	embd, outFill, down, wo := random, random, random, random
	if s.demo {
		chain := demoChain(v)
		embd = func(t gguf.TensorInfo) func(io.Writer) error { return demoEmbedding(t, chain, seed) }
		outFill = func(t gguf.TensorInfo) func(io.Writer) error { return demoOutput(t, chain) }
		down, wo = zero, zero
	}

	mat("token_embd.weight", "token_embd", 0, s.embd, nv, embd)
	for l := 0; l < s.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		norm(p + "attn_norm.weight")
		mat(p+"attn_q.weight", "attn_q", l, s.embd, s.embd, random)
		mat(p+"attn_k.weight", "attn_k", l, s.embd, kvDim, random)
		mat(p+"attn_v.weight", "attn_v", l, s.embd, kvDim, random)
		mat(p+"attn_output.weight", "attn_output", l, s.embd, s.embd, wo)
		norm(p + "ffn_norm.weight")
		mat(p+"ffn_gate.weight", "ffn_gate", l, s.embd, s.ff, random)
		mat(p+"ffn_up.weight", "ffn_up", l, s.embd, s.ff, random)
		mat(p+"ffn_down.weight", "ffn_down", l, s.ff, s.embd, down)
	}
	norm("output_norm.weight")
	if !s.tied {
		mat("output.weight", "output", 0, s.embd, nv, outFill)
	}
	return out
}
