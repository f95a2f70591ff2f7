package gguf

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Info summarises a model that passed Check.
type Info struct {
	Arch          string
	Name          string
	ContextLength uint64 // n_ctx_train
	EmbeddingLen  uint64 // n_embd
	BlockCount    uint64 // n_layer
	VocabSize     uint64 // n_vocab
	HeadCount     uint64
	HeadCountKV   uint64
	FileType      uint32 // general.file_type; 0 when absent
	TensorCount   int
	Params        uint64 // total tensor elements
	// Elements of the largest two-dimensional weight in a repeating block
	// (the feed-forward's, in a llama model).
	LargestBlockMatrix uint64
	Size               uint64 // file bytes
}

// Bounds on hyperparameters. Generous enough for every published model,
// tight enough that llama.cpp's allocations stay sane.
const (
	maxContext = 1 << 24
	maxEmbd    = 1 << 16
	maxLayers  = 512 // LLAMA_MAX_LAYERS
	maxFF      = 1 << 20
	maxHeads   = 1 << 12
	maxHeadDim = 1 << 12
	maxVocab   = 1 << 22
	maxExperts = 1 << 12
)

// llamaFamily are architectures whose per-layer tensors follow llama's
// layout (Qwen's extra biases and norms are allowed, not required).
var llamaFamily = map[string]bool{"llama": true, "qwen2": true, "qwen3": true}

// Check validates the GGUF file at path in Go before llama.cpp may open it:
// the structure (see Read) and the metadata llama.cpp trusts — tokenizer
// arrays, special-token ids, hyperparameters — and tensor shapes against the
// hyperparameters.
func Check(path string) (*Info, error) {
	f, err := Open(path)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	info, err := f.Check()
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	return info, nil
}

// CheckReader is Check for a file of size bytes read from r.
func CheckReader(r io.Reader, size int64) (*Info, error) {
	f, err := Read(r, size)
	if err != nil {
		return nil, err
	}
	return f.Check()
}

// Check validates f's metadata and tensor shapes (the structure was
// validated when f was read).
func (f *File) Check() (*Info, error) {
	c := checker{f: f, tensors: map[string]*TensorInfo{}}
	for i := range f.Tensors {
		c.tensors[f.Tensors[i].Name] = &f.Tensors[i]
	}
	return c.run()
}

type checker struct {
	f       *File
	tensors map[string]*TensorInfo
	info    Info
	layer   layerShape
}

func (c *checker) run() (*Info, error) {
	f := c.f
	arch, err := c.str(KeyArchitecture, true)
	if err != nil {
		return nil, err
	}
	c.info.Arch = arch
	c.info.Name, _ = c.str(KeyName, false)
	if v, ok := f.Get(KeyFileType); ok {
		ft, ok := v.(uint32)
		if !ok {
			return nil, fmt.Errorf("%w: %s has type %T, want uint32", ErrMetadata, KeyFileType, v)
		}
		c.info.FileType = ft
	}
	c.info.TensorCount = len(f.Tensors)
	c.info.Size = f.Size
	for _, t := range f.Tensors {
		n, _ := t.Elements()
		c.info.Params += n
		if len(t.Shape) == 2 && strings.HasPrefix(t.Name, "blk.") {
			c.info.LargestBlockMatrix = max(c.info.LargestBlockMatrix, n)
		}
	}
	if err := c.vocab(); err != nil {
		return nil, err
	}
	if err := c.hparams(); err != nil {
		return nil, err
	}
	if err := c.shapes(); err != nil {
		return nil, err
	}
	return &c.info, nil
}

func (c *checker) str(key string, required bool) (string, error) {
	v, ok := c.f.Get(key)
	if !ok {
		if required {
			return "", fmt.Errorf("%w: missing %s", ErrMetadata, key)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %s has type %T, want string", ErrMetadata, key, v)
	}
	if required && s == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrMetadata, key)
	}
	return s, nil
}

// vocab checks the tokenizer arrays llama.cpp indexes by token id without
// bounds checks, and the special-token ids.
func (c *checker) vocab() error {
	f := c.f
	model, err := c.str(KeyTokenizerModel, true)
	if err != nil {
		return fmt.Errorf("%w (tokenizer)", err)
	}
	v, ok := f.Get(KeyTokens)
	if !ok {
		return fmt.Errorf("%w: missing %s", ErrVocab, KeyTokens)
	}
	tokens, ok := v.([]string)
	if !ok {
		return fmt.Errorf("%w: %s has type %T, want array of string", ErrVocab, KeyTokens, v)
	}
	n := uint64(len(tokens))
	if n == 0 || n > maxVocab {
		return fmt.Errorf("%w: %s has %d tokens, want 1..%d", ErrVocab, KeyTokens, n, maxVocab)
	}
	// llama.cpp renames empty tokens and then asserts (aborting the process)
	// that every text maps to one id.
	seen := make(map[string]int, n)
	for i, tok := range tokens {
		if tok == "" {
			tok = "[EMPTY_" + strconv.Itoa(i) + "]"
		}
		if j, dup := seen[tok]; dup {
			return fmt.Errorf("%w: token text %q appears at ids %d and %d", ErrVocab, tok, j, i)
		}
		seen[tok] = i
	}
	if v, ok := f.Get(KeyScores); ok {
		s, ok := v.([]float32)
		if !ok {
			return fmt.Errorf("%w: %s has type %T, want array of float32", ErrVocab, KeyScores, v)
		}
		if uint64(len(s)) != n {
			return fmt.Errorf("%w: %s has %d entries for %d tokens", ErrVocab, KeyScores, len(s), n)
		}
	}
	if v, ok := f.Get(KeyTokenType); ok {
		tt, ok := v.([]int32)
		if !ok {
			return fmt.Errorf("%w: %s has type %T, want array of int32", ErrVocab, KeyTokenType, v)
		}
		if uint64(len(tt)) != n {
			return fmt.Errorf("%w: %s has %d entries for %d tokens", ErrVocab, KeyTokenType, len(tt), n)
		}
		for i, t := range tt {
			if t < TokenUndefined || t > TokenByte {
				return fmt.Errorf("%w: %s[%d] = %d, want 0..6", ErrVocab, KeyTokenType, i, t)
			}
		}
	}
	if v, ok := f.Get(KeyMerges); ok {
		if _, ok := v.([]string); !ok {
			return fmt.Errorf("%w: %s has type %T, want array of string", ErrVocab, KeyMerges, v)
		}
	} else if model == "gpt2" {
		return fmt.Errorf("%w: %s tokenizer without %s", ErrVocab, model, KeyMerges)
	}
	for _, key := range specialTokenKeys {
		v, ok := f.Get(key)
		if !ok {
			continue
		}
		id, ok := v.(uint32)
		if !ok {
			return fmt.Errorf("%w: %s has type %T, want uint32", ErrVocab, key, v)
		}
		if uint64(id) >= n {
			return fmt.Errorf("%w: %s = %d is outside the vocabulary of %d tokens", ErrVocab, key, id, n)
		}
	}
	if _, err := c.str(KeyChatTemplate, false); err != nil {
		return err
	}
	c.info.VocabSize = n
	if vs, ok, err := c.uint(c.info.Arch+"."+SuffixVocabSize, 1, maxVocab); err != nil {
		return err
	} else if ok && vs != n {
		return fmt.Errorf("%w: %s.%s = %d but %s has %d tokens", ErrVocab, c.info.Arch, SuffixVocabSize, vs, KeyTokens, n)
	}
	return nil
}

// uint reads an unsigned hyperparameter (uint32, as llama.cpp requires) and
// checks lo <= v <= hi.
func (c *checker) uint(key string, lo, hi uint64) (uint64, bool, error) {
	v, ok := c.f.Get(key)
	if !ok {
		return 0, false, nil
	}
	u, ok := v.(uint32)
	if !ok {
		return 0, false, fmt.Errorf("%w: %s has type %T, want uint32", ErrHyperparam, key, v)
	}
	if uint64(u) < lo || uint64(u) > hi {
		return 0, false, fmt.Errorf("%w: %s = %d, want %d..%d", ErrHyperparam, key, u, lo, hi)
	}
	return uint64(u), true, nil
}

// perLayer reads a hyperparameter that may be one uint32 or an array of one
// per layer, returning each layer's value.
func (c *checker) perLayer(key string, layers, lo, hi uint64, required bool) ([]uint64, error) {
	v, ok := c.f.Get(key)
	if !ok {
		if required {
			return nil, fmt.Errorf("%w: missing %s", ErrHyperparam, key)
		}
		return nil, nil
	}
	out := make([]uint64, layers)
	switch x := v.(type) {
	case uint32:
		for i := range out {
			out[i] = uint64(x)
		}
	case []uint32:
		if uint64(len(x)) != layers {
			return nil, fmt.Errorf("%w: %s has %d entries for %d layers", ErrHyperparam, key, len(x), layers)
		}
		for i := range out {
			out[i] = uint64(x[i])
		}
	case []int32:
		if uint64(len(x)) != layers {
			return nil, fmt.Errorf("%w: %s has %d entries for %d layers", ErrHyperparam, key, len(x), layers)
		}
		for i := range out {
			if x[i] < 0 {
				return nil, fmt.Errorf("%w: %s[%d] = %d is negative", ErrHyperparam, key, i, x[i])
			}
			out[i] = uint64(x[i])
		}
	default:
		return nil, fmt.Errorf("%w: %s has type %T, want uint32 or a per-layer array", ErrHyperparam, key, v)
	}
	for i, u := range out {
		if u < lo || u > hi {
			return nil, fmt.Errorf("%w: %s = %d (layer %d), want %d..%d", ErrHyperparam, key, u, i, lo, hi)
		}
	}
	return out, nil
}

func (c *checker) float(key string, lo, hi float64, required bool) error {
	v, ok := c.f.Get(key)
	if !ok {
		if required {
			return fmt.Errorf("%w: missing %s", ErrHyperparam, key)
		}
		return nil
	}
	x, ok := v.(float32)
	if !ok {
		return fmt.Errorf("%w: %s has type %T, want float32", ErrHyperparam, key, v)
	}
	if math.IsNaN(float64(x)) || float64(x) <= lo || float64(x) > hi {
		return fmt.Errorf("%w: %s = %g, want (%g, %g]", ErrHyperparam, key, x, lo, hi)
	}
	return nil
}

// layerShape holds what the per-layer tensors' shapes follow from.
type layerShape struct {
	heads, headsKV, ff []uint64
	headK, headV       uint64 // 0: n_embd / heads of that layer
	experts            uint64
}

func (c *checker) hparams() error {
	a := c.info.Arch + "."
	family := llamaFamily[c.info.Arch]
	req := func(key string, lo, hi uint64) (uint64, error) {
		v, ok, err := c.uint(a+key, lo, hi)
		if err == nil && !ok && family {
			err = fmt.Errorf("%w: missing %s%s", ErrHyperparam, a, key)
		}
		return v, err
	}
	var err error
	if c.info.ContextLength, err = req(SuffixContextLength, 1, maxContext); err != nil {
		return err
	}
	if c.info.EmbeddingLen, err = req(SuffixEmbeddingLen, 1, maxEmbd); err != nil {
		return err
	}
	if c.info.BlockCount, err = req(SuffixBlockCount, 1, maxLayers); err != nil {
		return err
	}
	if c.info.BlockCount == 0 {
		return nil // an architecture this check does not know the layout of
	}
	layers := c.info.BlockCount
	heads, err := c.perLayer(a+SuffixHeadCount, layers, 1, maxHeads, family)
	if err != nil {
		return err
	}
	headsKV, err := c.perLayer(a+SuffixHeadCountKV, layers, 1, maxHeads, false)
	if err != nil {
		return err
	}
	if headsKV == nil {
		headsKV = heads
	}
	ff, err := c.perLayer(a+SuffixFeedForward, layers, 1, maxFF, family)
	if err != nil {
		return err
	}
	headK, _, err := c.uint(a+SuffixKeyLength, 1, maxHeadDim)
	if err != nil {
		return err
	}
	headV, _, err := c.uint(a+SuffixValueLength, 1, maxHeadDim)
	if err != nil {
		return err
	}
	experts, _, err := c.uint(a+SuffixExpertCount, 0, maxExperts)
	if err != nil {
		return err
	}
	if err := c.float(a+SuffixRMSEpsilon, 0, 1, family); err != nil {
		return err
	}
	if err := c.float(a+SuffixRopeFreqBase, 0, 1e12, false); err != nil {
		return err
	}
	for l := range heads {
		h, kv := heads[l], headsKV[l]
		if kv > h || h%kv != 0 {
			return fmt.Errorf("%w: layer %d has %d heads and %d KV heads; KV heads must divide heads", ErrHyperparam, l, h, kv)
		}
		if (headK == 0 || headV == 0) && c.info.EmbeddingLen%h != 0 {
			return fmt.Errorf("%w: embedding length %d is not a multiple of the %d heads of layer %d", ErrHyperparam, c.info.EmbeddingLen, h, l)
		}
	}
	if len(heads) > 0 {
		c.info.HeadCount, c.info.HeadCountKV = heads[0], headsKV[0]
		if rd, ok, err := c.uint(a+SuffixRopeDimCount, 1, maxHeadDim); err != nil {
			return err
		} else if ok {
			hd := headK
			if hd == 0 {
				hd = c.info.EmbeddingLen / heads[0]
			}
			if rd > hd || rd%2 != 0 {
				return fmt.Errorf("%w: %s%s = %d, want an even number up to the head size %d", ErrHyperparam, a, SuffixRopeDimCount, rd, hd)
			}
		}
	}
	c.layer = layerShape{heads: heads, headsKV: headsKV, ff: ff, headK: headK, headV: headV, experts: experts}
	return nil
}

type tensorShape struct {
	name string
	dims []uint64
}

// want checks that tensor name exists (unless optional) with shape dims.
func (c *checker) want(name string, optional bool, dims ...uint64) error {
	t, ok := c.tensors[name]
	if !ok {
		if optional {
			return nil
		}
		return fmt.Errorf("%w: missing tensor %q", ErrShape, name)
	}
	got := trimOnes(t.Shape)
	if fmt.Sprint(got) != fmt.Sprint(trimOnes(dims)) {
		return fmt.Errorf("%w: tensor %q has shape %v, want %v", ErrShape, name, t.Shape, dims)
	}
	return nil
}

func trimOnes(s []uint64) []uint64 {
	for len(s) > 1 && s[len(s)-1] == 1 {
		s = s[:len(s)-1]
	}
	return s
}

// shapes checks the tensors against the hyperparameters: the embedding and
// output matrices for every architecture, and each layer's attention,
// feed-forward and norm tensors for the llama family.
func (c *checker) shapes() error {
	embd, nv, layers := c.info.EmbeddingLen, c.info.VocabSize, c.info.BlockCount
	for _, t := range c.f.Tensors {
		if rest, ok := strings.CutPrefix(t.Name, "blk."); ok {
			num, _, _ := strings.Cut(rest, ".")
			l, err := strconv.ParseUint(num, 10, 32)
			if err != nil || l >= layers {
				return fmt.Errorf("%w: tensor %q names a layer outside 0..%d", ErrShape, t.Name, int64(layers)-1)
			}
		}
	}
	if embd == 0 {
		return nil
	}
	family := llamaFamily[c.info.Arch]
	if err := c.want("token_embd.weight", !family, embd, nv); err != nil {
		return err
	}
	if err := c.want("output.weight", true, embd, nv); err != nil {
		return err
	}
	if !family {
		return nil
	}
	if err := c.want("output_norm.weight", false, embd); err != nil {
		return err
	}
	for l := uint64(0); l < layers; l++ {
		h, kv := c.layer.heads[l], c.layer.headsKV[l]
		hk, hv := c.layer.headK, c.layer.headV
		if hk == 0 {
			hk = embd / h
		}
		if hv == 0 {
			hv = embd / h
		}
		p := fmt.Sprintf("blk.%d.", l)
		checks := []tensorShape{
			{"attn_norm.weight", []uint64{embd}},
			{"attn_q.weight", []uint64{embd, h * hk}},
			{"attn_k.weight", []uint64{embd, kv * hk}},
			{"attn_v.weight", []uint64{embd, kv * hv}},
			{"attn_output.weight", []uint64{h * hv, embd}},
			{"ffn_norm.weight", []uint64{embd}},
		}
		if c.layer.experts == 0 {
			ff := c.layer.ff[l]
			checks = append(checks,
				tensorShape{"ffn_gate.weight", []uint64{embd, ff}},
				tensorShape{"ffn_up.weight", []uint64{embd, ff}},
				tensorShape{"ffn_down.weight", []uint64{ff, embd}})
		}
		for _, ck := range checks {
			if err := c.want(p+ck.name, false, ck.dims...); err != nil {
				return err
			}
		}
	}
	return nil
}
