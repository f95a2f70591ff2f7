package gguf_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kwyre/kwyre/services/inference/gguf"
	"github.com/kwyre/kwyre/tools/testmodel"
)

// rawTensor is a tensor and its data bytes, laid out by raw.build.
type rawTensor struct {
	info gguf.TensorInfo
	data []byte
}

// raw is a GGUF file in pieces, encoded without any of the Writer's checks,
// so tests can produce exactly the malformation they want.
type raw struct {
	magic       string
	version     uint32
	nt, nkv     *uint64 // override the counts
	kvs         []gguf.KV
	extraKV     []byte // pre-encoded entries appended after kvs (counted in nkv)
	extraKVN    uint64
	tensors     []rawTensor
	keepOffsets bool // use info.Offset as is instead of laying tensors out
	align       uint64
}

func (r *raw) build() []byte {
	b := []byte(r.magic)
	b = binary.LittleEndian.AppendUint32(b, r.version)
	nt, nkv := uint64(len(r.tensors)), uint64(len(r.kvs))+r.extraKVN
	if r.nt != nil {
		nt = *r.nt
	}
	if r.nkv != nil {
		nkv = *r.nkv
	}
	b = binary.LittleEndian.AppendUint64(b, nt)
	b = binary.LittleEndian.AppendUint64(b, nkv)
	for _, kv := range r.kvs {
		b = gguf.AppendKV(b, kv)
	}
	b = append(b, r.extraKV...)
	var off uint64
	for i := range r.tensors {
		t := &r.tensors[i]
		if !r.keepOffsets {
			t.info.Offset = off
			off += (uint64(len(t.data)) + r.align - 1) / r.align * r.align
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(len(t.info.Name)))
		b = append(b, t.info.Name...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.info.Shape)))
		for _, d := range t.info.Shape {
			b = binary.LittleEndian.AppendUint64(b, d)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(t.info.Type))
		b = binary.LittleEndian.AppendUint64(b, t.info.Offset)
	}
	for uint64(len(b))%r.align != 0 {
		b = append(b, 0)
	}
	for _, t := range r.tensors {
		b = append(b, t.data...)
		for uint64(len(b))%r.align != 0 {
			b = append(b, 0)
		}
	}
	return b
}

func (r *raw) set(key string, v any) {
	for i := range r.kvs {
		if r.kvs[i].Key == key {
			r.kvs[i].Value = v
			return
		}
	}
	r.kvs = append(r.kvs, gguf.KV{Key: key, Value: v})
}

func (r *raw) del(key string) {
	r.kvs = slices.DeleteFunc(r.kvs, func(kv gguf.KV) bool { return kv.Key == key })
}

func (r *raw) get(key string) any {
	for _, kv := range r.kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}

func (r *raw) tensor(name string) *rawTensor {
	for i := range r.tensors {
		if r.tensors[i].info.Name == name {
			return &r.tensors[i]
		}
	}
	panic("no tensor " + name)
}

func (r *raw) dropTensor(name string) {
	r.tensors = slices.DeleteFunc(r.tensors, func(t rawTensor) bool { return t.info.Name == name })
}

var (
	tinyOnce  sync.Once
	tinyBytes []byte
)

// tinyModel is a valid generated model (tiny preset, q8_0), shared by tests.
func tinyModel(t testing.TB) []byte {
	tinyOnce.Do(func() {
		var buf bytes.Buffer
		if err := testmodel.Write(&buf, testmodel.Options{Preset: "tiny", Type: "q8_0", Seed: 1}); err != nil {
			panic(err)
		}
		tinyBytes = buf.Bytes()
	})
	return tinyBytes
}

// parseRaw splits a valid model into an editable raw.
func parseRaw(t testing.TB, b []byte) *raw {
	t.Helper()
	f, err := gguf.Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("read valid model: %v", err)
	}
	r := &raw{magic: gguf.Magic, version: f.Version, align: f.Alignment}
	for _, kv := range f.KV {
		r.kvs = append(r.kvs, kv)
	}
	for _, ti := range f.Tensors {
		size, _ := ti.Size()
		start := f.DataOffset + ti.Offset
		r.tensors = append(r.tensors, rawTensor{info: ti, data: b[start : start+size]})
	}
	return r
}

func check(b []byte) (*gguf.Info, error) {
	return gguf.CheckReader(bytes.NewReader(b), int64(len(b)))
}

func u64(v uint64) *uint64 { return &v }

// kvBytes encodes one metadata entry with a raw type tag and payload.
func kvBytes(key string, typ uint32, payload ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(key)))
	b = append(b, key...)
	b = binary.LittleEndian.AppendUint32(b, typ)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func TestCheckAcceptsGeneratedModel(t *testing.T) {
	b := tinyModel(t)
	info, err := check(b)
	if err != nil {
		t.Fatal(err)
	}
	if info.Arch != "llama" || info.EmbeddingLen != 64 || info.BlockCount != 2 || info.VocabSize != 512 ||
		info.ContextLength != 2048 || info.HeadCount != 4 || info.HeadCountKV != 2 || info.Size != uint64(len(b)) ||
		info.FileType != gguf.FileTypeQ8_0 || info.TensorCount != 21 || info.LargestBlockMatrix != 64*256 {
		t.Errorf("info = %+v", info)
	}
	// The raw builder reproduces the generated file byte for byte, so the
	// corruptions below differ from a valid file only where they say.
	if rb := parseRaw(t, b).build(); !bytes.Equal(rb, b) {
		t.Fatalf("raw rebuild differs from the generated file (%d vs %d bytes)", len(rb), len(b))
	}
}

func TestCheckCorruptions(t *testing.T) {
	valid := tinyModel(t)
	const (
		tokens = gguf.KeyTokens
		ctxLen = "llama.context_length"
	)
	cases := []struct {
		name  string
		edit  func(r *raw)
		bytes func(b []byte) []byte // byte-level edit after build
		want  error
		msg   string
	}{
		{name: "bad magic", edit: func(r *raw) { r.magic = "GGML" }, want: gguf.ErrMagic, msg: `magic "GGML"`},
		{name: "empty file", bytes: func([]byte) []byte { return nil }, want: gguf.ErrMagic, msg: "magic"},
		{name: "version 1", edit: func(r *raw) { r.version = 1 }, want: gguf.ErrVersion, msg: "1"},
		{name: "version 4", edit: func(r *raw) { r.version = 4 }, want: gguf.ErrVersion, msg: "4"},
		{name: "big-endian version", edit: func(r *raw) { r.version = 3 << 24 }, want: gguf.ErrVersion},
		{name: "truncated in header", bytes: func(b []byte) []byte { return b[:20] }, want: gguf.ErrTruncated},
		{name: "truncated in metadata", bytes: func(b []byte) []byte { return b[:2000] }, want: gguf.ErrTruncated},
		{name: "truncated in tensor data", bytes: func(b []byte) []byte { return b[:len(b)-5000] }, want: gguf.ErrTensorData, msg: `"output.weight"`},
		{name: "tensor count beyond limit", edit: func(r *raw) { r.nt = u64(1 << 40) }, want: gguf.ErrBounds, msg: "tensor count"},
		{name: "metadata count beyond limit", edit: func(r *raw) { r.nkv = u64(math.MaxUint64) }, want: gguf.ErrBounds, msg: "metadata count"},
		{name: "counts beyond file size", edit: func(r *raw) { r.nkv = u64(60000) }, want: gguf.ErrTruncated, msg: "60000 metadata entries"},
		{name: "oversized key", edit: func(r *raw) {
			r.extraKV, r.extraKVN = kvBytes(strings.Repeat("k", gguf.MaxKeyLen+1), uint32(gguf.ValueUint8), []byte{1}), 1
		}, want: gguf.ErrBounds, msg: "metadata key"},
		{name: "string longer than file", edit: func(r *raw) {
			r.extraKV, r.extraKVN = kvBytes("x.s", uint32(gguf.ValueString), le64(1<<20)), 1
		}, want: gguf.ErrTruncated, msg: `value of "x.s"`},
		{name: "string over limit", edit: func(r *raw) {
			r.extraKV, r.extraKVN = kvBytes("x.s", uint32(gguf.ValueString), le64(1<<40)), 1
		}, want: gguf.ErrBounds, msg: `value of "x.s"`},
		{name: "array over limit", edit: func(r *raw) {
			r.extraKV, r.extraKVN = kvBytes("x.a", uint32(gguf.ValueArray), le32(uint32(gguf.ValueUint32)), le64(1<<62)), 1
		}, want: gguf.ErrBounds, msg: `array "x.a"`},
		{name: "array longer than file", edit: func(r *raw) {
			r.extraKV, r.extraKVN = kvBytes("x.a", uint32(gguf.ValueArray), le32(uint32(gguf.ValueString)), le64(1<<20)), 1
		}, want: gguf.ErrTruncated, msg: `"x.a"`},
		{name: "nested array", edit: func(r *raw) {
			r.extraKV, r.extraKVN = kvBytes("x.a", uint32(gguf.ValueArray), le32(uint32(gguf.ValueArray)), le64(1)), 1
		}, want: gguf.ErrMetadata, msg: "element type array"},
		{name: "unknown value type", edit: func(r *raw) {
			r.extraKV, r.extraKVN = kvBytes("x.v", 99, le32(0)), 1
		}, want: gguf.ErrMetadata, msg: "unknown value type 99"},
		{name: "duplicate key", edit: func(r *raw) { r.kvs = append(r.kvs, gguf.KV{Key: ctxLen, Value: uint32(5)}) }, want: gguf.ErrDuplicate, msg: ctxLen},
		{name: "alignment not a power of two", edit: func(r *raw) { r.set(gguf.KeyAlignment, uint32(48)) }, want: gguf.ErrMetadata, msg: "power of two"},
		{name: "alignment wrong type", edit: func(r *raw) { r.set(gguf.KeyAlignment, uint64(32)) }, want: gguf.ErrMetadata, msg: "uint32"},
		{name: "duplicate tensor", edit: func(r *raw) { r.tensor("blk.1.attn_q.weight").info.Name = "blk.0.attn_q.weight" }, want: gguf.ErrDuplicate, msg: "blk.0.attn_q.weight"},
		{name: "tensor name too long", edit: func(r *raw) { r.tensors[0].info.Name = strings.Repeat("n", 64) }, want: gguf.ErrBounds, msg: "name"},
		{name: "five dimensions", edit: func(r *raw) { r.tensors[0].info.Shape = []uint64{64, 512, 1, 1, 1} }, want: gguf.ErrShape, msg: "5 dimensions"},
		{name: "zero dimension", edit: func(r *raw) { r.tensors[0].info.Shape = []uint64{64, 0} }, want: gguf.ErrShape, msg: "dimension 1 is 0"},
		{name: "shape overflows", edit: func(r *raw) { r.tensors[0].info.Shape = []uint64{1 << 32, 1 << 32} }, want: gguf.ErrBounds, msg: "overflows"},
		{name: "unknown tensor type", edit: func(r *raw) { r.tensors[0].info.Type = 4 }, want: gguf.ErrTensorType, msg: "token_embd.weight"},
		{name: "tensor type past the table", edit: func(r *raw) { r.tensors[0].info.Type = 1000 }, want: gguf.ErrTensorType},
		{name: "row not whole blocks", edit: func(r *raw) { r.tensors[0].info.Shape = []uint64{48, 512} }, want: gguf.ErrTensorSize, msg: "block size 32"},
		{name: "size does not match data", edit: func(r *raw) { r.tensor("blk.0.attn_q.weight").info.Type = gguf.TypeF32 }, want: gguf.ErrTensorData, msg: "overlaps"},
		{name: "misaligned offset", edit: func(r *raw) {
			r.build()
			r.keepOffsets = true
			r.tensors[3].info.Offset += 4
		}, want: gguf.ErrTensorData, msg: "alignment"},
		{name: "overlapping tensors", edit: func(r *raw) {
			r.build()
			r.keepOffsets = true
			r.tensors[3].info.Offset = r.tensors[2].info.Offset
		}, want: gguf.ErrTensorData, msg: "overlaps"},
		{name: "gap between tensors", edit: func(r *raw) {
			r.build()
			r.keepOffsets = true
			r.tensors[3].info.Offset += 32
		}, want: gguf.ErrTensorData, msg: "gap"},
		{name: "offset past the file", edit: func(r *raw) {
			r.build()
			r.keepOffsets = true
			r.tensors = r.tensors[:1]
			r.tensors[0].info.Offset = 0
			r.tensors[0].info.Shape = []uint64{64, 1 << 20}
		}, want: gguf.ErrTensorData, msg: "beyond the file"},
		{name: "no architecture", edit: func(r *raw) { r.del(gguf.KeyArchitecture) }, want: gguf.ErrMetadata, msg: gguf.KeyArchitecture},
		{name: "no tokenizer model", edit: func(r *raw) { r.del(gguf.KeyTokenizerModel) }, want: gguf.ErrMetadata, msg: gguf.KeyTokenizerModel},
		{name: "no tokens", edit: func(r *raw) { r.del(tokens) }, want: gguf.ErrVocab, msg: "missing " + tokens},
		{name: "tokens wrong type", edit: func(r *raw) { r.set(tokens, make([]int32, 512)) }, want: gguf.ErrVocab, msg: "want array of string"},
		{name: "empty vocabulary", edit: func(r *raw) { r.set(tokens, []string{}) }, want: gguf.ErrVocab, msg: "0 tokens"},
		{name: "duplicate token text", edit: func(r *raw) {
			toks := slices.Clone(r.get(tokens).([]string))
			toks[300] = toks[65]
			r.set(tokens, toks)
		}, want: gguf.ErrVocab, msg: "ids 65 and 300"},
		{name: "empty token colliding with its placeholder", edit: func(r *raw) {
			toks := slices.Clone(r.get(tokens).([]string))
			toks[5], toks[400] = "", "[EMPTY_5]"
			r.set(tokens, toks)
		}, want: gguf.ErrVocab, msg: "[EMPTY_5]"},
		{name: "scores short", edit: func(r *raw) { r.set(gguf.KeyScores, make([]float32, 511)) }, want: gguf.ErrVocab, msg: "511 entries for 512 tokens"},
		{name: "scores wrong type", edit: func(r *raw) { r.set(gguf.KeyScores, make([]float64, 512)) }, want: gguf.ErrVocab, msg: "float32"},
		{name: "token types short", edit: func(r *raw) { r.set(gguf.KeyTokenType, make([]int32, 100)) }, want: gguf.ErrVocab, msg: "100 entries"},
		{name: "token types long", edit: func(r *raw) { r.set(gguf.KeyTokenType, make([]int32, 513)) }, want: gguf.ErrVocab, msg: "513 entries"},
		{name: "token types wrong element type", edit: func(r *raw) { r.set(gguf.KeyTokenType, make([]uint8, 512)) }, want: gguf.ErrVocab, msg: "int32"},
		{name: "token type out of range", edit: func(r *raw) {
			tt := slices.Clone(r.get(gguf.KeyTokenType).([]int32))
			tt[7] = 42
			r.set(gguf.KeyTokenType, tt)
		}, want: gguf.ErrVocab, msg: "[7] = 42"},
		{name: "no merges", edit: func(r *raw) { r.del(gguf.KeyMerges) }, want: gguf.ErrVocab, msg: gguf.KeyMerges},
		{name: "merges wrong type", edit: func(r *raw) { r.set(gguf.KeyMerges, []uint32{1}) }, want: gguf.ErrVocab, msg: gguf.KeyMerges},
		{name: "eos outside vocabulary", edit: func(r *raw) { r.set(gguf.KeyEOS, uint32(512)) }, want: gguf.ErrVocab, msg: gguf.KeyEOS + " = 512"},
		{name: "eot outside vocabulary", edit: func(r *raw) { r.set(gguf.KeyEOT, uint32(1<<31)) }, want: gguf.ErrVocab, msg: gguf.KeyEOT},
		{name: "unk outside vocabulary", edit: func(r *raw) { r.set("tokenizer.ggml.unknown_token_id", uint32(9999)) }, want: gguf.ErrVocab, msg: "unknown_token_id"},
		{name: "bos wrong type", edit: func(r *raw) { r.set(gguf.KeyBOS, int64(1)) }, want: gguf.ErrVocab, msg: "int64"},
		{name: "chat template wrong type", edit: func(r *raw) { r.set(gguf.KeyChatTemplate, uint8(1)) }, want: gguf.ErrMetadata, msg: gguf.KeyChatTemplate},
		{name: "vocab_size disagrees", edit: func(r *raw) { r.set("llama.vocab_size", uint32(600)) }, want: gguf.ErrVocab, msg: "600"},
		{name: "no context length", edit: func(r *raw) { r.del(ctxLen) }, want: gguf.ErrHyperparam, msg: "missing " + ctxLen},
		{name: "context length wrong type", edit: func(r *raw) { r.set(ctxLen, uint64(2048)) }, want: gguf.ErrHyperparam, msg: "uint64"},
		{name: "context length zero", edit: func(r *raw) { r.set(ctxLen, uint32(0)) }, want: gguf.ErrHyperparam, msg: ctxLen + " = 0"},
		{name: "context length huge", edit: func(r *raw) { r.set(ctxLen, uint32(math.MaxUint32)) }, want: gguf.ErrHyperparam, msg: ctxLen},
		{name: "no embedding length", edit: func(r *raw) { r.del("llama.embedding_length") }, want: gguf.ErrHyperparam, msg: "embedding_length"},
		{name: "embedding length huge", edit: func(r *raw) { r.set("llama.embedding_length", uint32(1<<20)) }, want: gguf.ErrHyperparam, msg: "embedding_length"},
		{name: "block count huge", edit: func(r *raw) { r.set("llama.block_count", uint32(100000)) }, want: gguf.ErrHyperparam, msg: "block_count"},
		{name: "no head count", edit: func(r *raw) { r.del("llama.attention.head_count") }, want: gguf.ErrHyperparam, msg: "head_count"},
		{name: "head count zero", edit: func(r *raw) { r.set("llama.attention.head_count", uint32(0)) }, want: gguf.ErrHyperparam, msg: "head_count = 0"},
		{name: "kv heads do not divide heads", edit: func(r *raw) { r.set("llama.attention.head_count_kv", uint32(3)) }, want: gguf.ErrHyperparam, msg: "KV heads"},
		{name: "heads do not divide embedding", edit: func(r *raw) {
			r.set("llama.attention.head_count", uint32(6))
			r.set("llama.attention.head_count_kv", uint32(6))
		}, want: gguf.ErrHyperparam, msg: "not a multiple"},
		{name: "per-layer heads wrong length", edit: func(r *raw) { r.set("llama.attention.head_count", []uint32{4, 4, 4}) }, want: gguf.ErrHyperparam, msg: "3 entries for 2 layers"},
		{name: "feed-forward wrong type", edit: func(r *raw) { r.set("llama.feed_forward_length", float32(256)) }, want: gguf.ErrHyperparam, msg: "feed_forward_length"},
		{name: "no rms epsilon", edit: func(r *raw) { r.del("llama.attention.layer_norm_rms_epsilon") }, want: gguf.ErrHyperparam, msg: "layer_norm_rms_epsilon"},
		{name: "rms epsilon NaN", edit: func(r *raw) { r.set("llama.attention.layer_norm_rms_epsilon", float32(math.NaN())) }, want: gguf.ErrHyperparam, msg: "NaN"},
		{name: "rms epsilon negative", edit: func(r *raw) { r.set("llama.attention.layer_norm_rms_epsilon", float32(-1e-5)) }, want: gguf.ErrHyperparam, msg: "epsilon"},
		{name: "rope base infinite", edit: func(r *raw) { r.set("llama.rope.freq_base", float32(math.Inf(1))) }, want: gguf.ErrHyperparam, msg: "freq_base"},
		{name: "rope dims odd", edit: func(r *raw) { r.set("llama.rope.dimension_count", uint32(15)) }, want: gguf.ErrHyperparam, msg: "dimension_count = 15"},
		{name: "rope dims beyond head", edit: func(r *raw) { r.set("llama.rope.dimension_count", uint32(32)) }, want: gguf.ErrHyperparam, msg: "head size 16"},
		{name: "embedding shape transposed", edit: func(r *raw) { r.tensor("token_embd.weight").info.Shape = []uint64{512, 64} }, want: gguf.ErrShape, msg: "token_embd.weight"},
		{name: "output shape wrong", edit: func(r *raw) { r.tensor("output.weight").info.Shape = []uint64{32, 1024} }, want: gguf.ErrShape, msg: "output.weight"},
		{name: "no token embedding", edit: func(r *raw) { r.dropTensor("token_embd.weight") }, want: gguf.ErrShape, msg: `missing tensor "token_embd.weight"`},
		{name: "no output norm", edit: func(r *raw) { r.dropTensor("output_norm.weight") }, want: gguf.ErrShape, msg: "output_norm.weight"},
		{name: "layer tensor missing", edit: func(r *raw) { r.dropTensor("blk.1.ffn_down.weight") }, want: gguf.ErrShape, msg: `"blk.1.ffn_down.weight"`},
		{name: "kv projection wrong width", edit: func(r *raw) {
			r.set("llama.attention.head_count_kv", uint32(4))
		}, want: gguf.ErrShape, msg: `"blk.0.attn_k.weight" has shape [64 32], want [64 64]`},
		{name: "feed-forward length disagrees", edit: func(r *raw) { r.set("llama.feed_forward_length", uint32(128)) }, want: gguf.ErrShape, msg: "ffn_gate"},
		{name: "more layers than tensors", edit: func(r *raw) { r.set("llama.block_count", uint32(3)) }, want: gguf.ErrShape, msg: "blk.2."},
		{name: "tensor of a layer past block count", edit: func(r *raw) { r.tensor("blk.1.ffn_norm.weight").info.Name = "blk.9.ffn_norm.weight" }, want: gguf.ErrShape, msg: "blk.9.ffn_norm.weight"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := parseRaw(t, valid)
			if c.edit != nil {
				c.edit(r)
			}
			b := r.build()
			if c.bytes != nil {
				b = c.bytes(b)
			}
			_, err := check(b)
			if err == nil {
				t.Fatalf("accepted; want %v", c.want)
			}
			t.Log(err)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q, want %v mentioning %q", err, c.want, c.msg)
			}
		})
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.gguf")
	if err := os.WriteFile(good, tinyModel(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := gguf.Check(good); err != nil {
		t.Fatalf("valid file: %v", err)
	}
	bad := filepath.Join(dir, "bad.gguf")
	if err := os.WriteFile(bad, tinyModel(t)[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]error{
		bad:                       gguf.ErrTruncated,
		dir:                       nil, // a folder, not a model
		filepath.Join(dir, "nil"): os.ErrNotExist,
	} {
		_, err := gguf.Check(path)
		if err == nil || (want != nil && !errors.Is(err, want)) || !strings.Contains(err.Error(), path) {
			t.Errorf("Check(%s) = %v, want an error naming the file (%v)", path, err, want)
		}
	}
}

func FuzzCheck(f *testing.F) {
	valid := tinyModel(f)
	f.Add(valid)
	f.Add(valid[:4096])
	f.Add([]byte("GGUF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := check(b)
		if err == nil && (info.VocabSize == 0 || info.Size != uint64(len(b))) {
			t.Fatalf("accepted with info %+v", info)
		}
	})
}

// renameArch moves every "llama." key to arch's prefix.
func (r *raw) renameArch(arch string) {
	for i := range r.kvs {
		if k, ok := strings.CutPrefix(r.kvs[i].Key, "llama."); ok {
			r.kvs[i].Key = arch + "." + k
		}
	}
	r.set(gguf.KeyArchitecture, arch)
}

// TestCheckVariants covers valid files that differ from the generated llama
// models the way real models do.
func TestCheckVariants(t *testing.T) {
	cases := []struct {
		name string
		edit func(r *raw)
		want error // nil: accepted
		msg  string
	}{
		{"qwen2 keys", func(r *raw) { r.renameArch("qwen2") }, nil, ""},
		{"qwen3 with its head size", func(r *raw) {
			r.renameArch("qwen3")
			r.set("qwen3.attention.key_length", uint32(16))
			r.set("qwen3.attention.value_length", uint32(16))
		}, nil, ""},
		{"qwen3 head size disagrees with q", func(r *raw) {
			r.renameArch("qwen3")
			r.set("qwen3.attention.key_length", uint32(32))
			r.set("qwen3.attention.value_length", uint32(16))
		}, gguf.ErrShape, `"blk.0.attn_q.weight" has shape [64 64], want [64 128]`},
		{"unknown architecture: generic checks only", func(r *raw) {
			r.renameArch("futurenet")
			r.dropTensor("blk.0.ffn_down.weight")
		}, nil, ""},
		{"unknown architecture still checks the embedding", func(r *raw) {
			r.renameArch("futurenet")
			r.tensor("token_embd.weight").info.Shape = []uint64{32, 1024}
		}, gguf.ErrShape, "token_embd.weight"},
		{"tied embeddings", func(r *raw) { r.dropTensor("output.weight") }, nil, ""},
		{"per-layer head counts", func(r *raw) {
			r.set("llama.attention.head_count", []uint32{4, 4})
			r.set("llama.attention.head_count_kv", []int32{2, 2})
		}, nil, ""},
		{"mixture of experts skips dense feed-forward", func(r *raw) {
			r.set("llama.expert_count", uint32(8))
			r.dropTensor("blk.0.ffn_gate.weight")
		}, nil, ""},
		{"no optional tokenizer arrays", func(r *raw) {
			r.del(gguf.KeyScores)
			r.del(gguf.KeyTokenType)
			r.del("llama.vocab_size")
		}, nil, ""},
		{"version 2", func(r *raw) { r.version = 2 }, nil, ""},
		{"alignment 64", func(r *raw) { r.set(gguf.KeyAlignment, uint32(64)); r.align = 64 }, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := parseRaw(t, tinyModel(t))
			c.edit(r)
			info, err := check(r.build())
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == nil && (info.EmbeddingLen != 64 || info.VocabSize != 512):
				t.Fatalf("info %+v", info)
			case c.want != nil && (!errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.msg)):
				t.Fatalf("error %v, want %v mentioning %q", err, c.want, c.msg)
			}
		})
	}
}

// headWriter keeps the first limit bytes written and counts the rest.
type headWriter struct {
	head  []byte
	limit int
	n     int64
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.limit - len(w.head); room > 0 {
		w.head = append(w.head, p[:min(room, len(p))]...)
	}
	w.n += int64(len(p))
	return len(p), nil
}

// BenchmarkCheck measures Check on headers: tiny's 512-token vocabulary and
// a Llama 3 shaped 128256-token one (the cost the appliance pays at boot).
func BenchmarkCheck(b *testing.B) {
	for _, preset := range []string{"tiny", "llama3.2-1b"} {
		w := &headWriter{limit: 16 << 20}
		if err := testmodel.Write(w, testmodel.Options{Preset: preset, Type: "q4_0", Seed: 1}); err != nil {
			b.Fatal(err)
		}
		b.Run(preset, func(b *testing.B) {
			for b.Loop() {
				if _, err := gguf.CheckReader(bytes.NewReader(w.head), w.n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
