package testmodel

import (
	"encoding/binary"
	"hash/fnv"
	"io"
	"math/rand/v2"

	"github.com/kwyre/kwyre/services/inference/gguf"
)

const chunkBytes = 1 << 20

// rowsFill writes t row by row; row(i, x) fills row i's float values.
func rowsFill(t gguf.TensorInfo, row func(i int, x []float32)) func(io.Writer) error {
	return func(w io.Writer) error {
		ne0 := int(t.Shape[0])
		rows := 1
		for _, d := range t.Shape[1:] {
			rows *= int(d)
		}
		x := make([]float32, ne0)
		rowBytes, err := t.Type.RowSize(uint64(ne0))
		if err != nil {
			return err
		}
		buf := make([]byte, 0, min(chunkBytes, rows*int(rowBytes))+int(rowBytes))
		for i := 0; i < rows; i++ {
			row(i, x)
			if buf, err = gguf.AppendRow(buf, t.Type, x); err != nil {
				return err
			}
			if len(buf) >= chunkBytes || i == rows-1 {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		return nil
	}
}

func constRows(t gguf.TensorInfo, c float32) func(io.Writer) error {
	return rowsFill(t, func(_ int, x []float32) {
		for j := range x {
			x[j] = c
		}
	})
}

// tensorRNG is a generator seeded by the model seed and the tensor's name, so
// every tensor's values are fixed by (seed, name) alone.
func tensorRNG(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// randomFill writes uniform random weights of magnitude about scale. Float
// types get values in [-scale, scale]; quantized types get random block
// bytes with a fixed per-tensor scale, written block by block without ever
// materialising floats, which keeps multi-gigabyte models fast to write.
func randomFill(t gguf.TensorInfo, seed uint64, scale float32) func(io.Writer) error {
	rng := tensorRNG(seed, t.Name)
	switch t.Type {
	case gguf.TypeF32, gguf.TypeF16:
		return rowsFill(t, func(_ int, x []float32) {
			for j := range x {
				x[j] = (float32(rng.Uint32()>>8)/(1<<23) - 1) * scale
			}
		})
	}
	return func(w io.Writer) error {
		n, err := t.Elements()
		if err != nil {
			return err
		}
		bs := int(t.Type.TypeSize())
		soff, sval := blockScales(t.Type, scale)
		blocks := int(n / t.Type.BlockSize())
		per := min(chunkBytes/bs, blocks)
		buf := make([]byte, per*bs+8)
		for done := 0; done < blocks; {
			k := min(per, blocks-done)
			b := buf[:k*bs]
			for i := 0; i < len(b); i += 8 {
				binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
			}
			for i := 0; i < k; i++ {
				copy(b[i*bs+soff:], sval)
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
			done += k
		}
		return nil
	}
}

// blockScales returns where a random block's scale fields are and the bytes
// to put there so its values have magnitude about scale (random scale bits
// could be Inf or NaN).
func blockScales(t gguf.TensorType, scale float32) (off int, val []byte) {
	h := func(f float32) []byte { return binary.LittleEndian.AppendUint16(nil, gguf.Float16(f)) }
	switch t {
	case gguf.TypeQ8_0: // d, qs[32] int8
		return 0, h(scale / 127)
	case gguf.TypeQ4_0: // d, qs[16] nibbles - 8
		return 0, h(scale / 8)
	case gguf.TypeQ4_K: // d, dmin, scales[12] 6-bit, qs[128]
		return 0, append(h(scale/256), h(scale/32)...)
	case gguf.TypeQ6_K: // ql[128], qh[64], scales[16] int8, d
		return 208, h(scale / 2048)
	}
	return 0, nil
}

// demoEmbedding gives the chain's predecessor tokens orthogonal Hadamard
// rows (row k+1 for chain[k]) and every other token a random ±1 row.
func demoEmbedding(t gguf.TensorInfo, chain []int, seed uint64) func(io.Writer) error {
	n := int(t.Shape[0])
	rowOf := map[int]int{}
	for k, id := range chain[:len(chain)-1] {
		rowOf[id] = k + 1
	}
	rng := tensorRNG(seed, t.Name)
	return rowsFill(t, func(i int, x []float32) {
		if k, ok := rowOf[i]; ok {
			copy(x, hadamard(k, n))
			return
		}
		for j := range x {
			x[j] = float32(int(rng.Uint32()&1)*2 - 1)
		}
	})
}

// demoOutput makes chain[k+1]'s output row a scaled copy of chain[k]'s
// embedding: after the final RMS norm (which leaves a ±1 vector unchanged),
// the current token's embedding scores exactly its successor with demoLogit
// and every other token with 0.
func demoOutput(t gguf.TensorInfo, chain []int) func(io.Writer) error {
	n := int(t.Shape[0])
	rowOf := map[int]int{}
	for k, id := range chain[1:] {
		rowOf[id] = k + 1
	}
	return rowsFill(t, func(i int, x []float32) {
		k, ok := rowOf[i]
		if !ok {
			clear(x)
			return
		}
		for j, v := range hadamard(k, n) {
			x[j] = v * demoLogit / float32(n)
		}
	})
}
