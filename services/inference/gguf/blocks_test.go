package gguf

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

func TestFloat16(t *testing.T) {
	cases := []struct {
		f float32
		h uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},                   // largest half
		{65520, 0x7c00},                   // rounds to +Inf
		{1e6, 0x7c00},                     // overflow
		{float32(math.Inf(-1)), 0xfc00},   // -Inf
		{6.103515625e-05, 0x0400},         // smallest normal
		{5.960464477539063e-08, 0x0001},   // smallest subnormal
		{2.98023223876953125e-08, 0x0000}, // half of it rounds to even (0)
		{1.0009765625, 0x3c01},            // 1 + 2^-10
		{1.00048828125, 0x3c00},           // 1 + 2^-11: tie, to even
		{1.00146484375, 0x3c02},           // 1 + 3*2^-11: tie, to even
		{0.333251953125, 0x3555},          // 1/3 in half
	}
	for _, c := range cases {
		if got := Float16(c.f); got != c.h {
			t.Errorf("Float16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	if h := Float16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("Float16(NaN) = %#04x", h)
	}
	// Every finite half survives a round trip.
	for h := uint32(0); h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 {
			continue
		}
		if got := Float16(Float16To32(uint16(h))); got != uint16(h) {
			t.Fatalf("round trip of %#04x gave %#04x", h, got)
		}
	}
}

// dequant decodes one row the way ggml's dequantize_row_* functions do.
func dequant(t TensorType, b []byte, n int) []float32 {
	out := make([]float32, 0, n)
	le := binary.LittleEndian
	switch t {
	case TypeF32:
		for i := 0; i < n; i++ {
			out = append(out, math.Float32frombits(le.Uint32(b[4*i:])))
		}
	case TypeF16:
		for i := 0; i < n; i++ {
			out = append(out, Float16To32(le.Uint16(b[2*i:])))
		}
	case TypeQ8_0:
		for blk := 0; blk < n/32; blk++ {
			d := Float16To32(le.Uint16(b[34*blk:]))
			for j := 0; j < 32; j++ {
				out = append(out, d*float32(int8(b[34*blk+2+j])))
			}
		}
	case TypeQ4_0:
		for blk := 0; blk < n/32; blk++ {
			p := b[18*blk:]
			d := Float16To32(le.Uint16(p))
			lo := make([]float32, 16)
			hi := make([]float32, 16)
			for j := 0; j < 16; j++ {
				lo[j] = d * float32(int(p[2+j]&0xf)-8)
				hi[j] = d * float32(int(p[2+j]>>4)-8)
			}
			out = append(append(out, lo...), hi...)
		}
	}
	return out
}

func TestAppendRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 256)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, c := range []struct {
		t   TensorType
		tol float64 // relative to the largest |x|
	}{
		{TypeF32, 0}, {TypeF16, 1e-3}, {TypeQ8_0, 1.0 / 127}, {TypeQ4_0, 1.0 / 7},
	} {
		b, err := AppendRow(nil, c.t, x)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := c.t.RowSize(uint64(len(x))); uint64(len(b)) != want {
			t.Fatalf("%s: %d bytes, want %d", c.t, len(b), want)
		}
		y := dequant(c.t, b, len(x))
		for i := range x {
			if d := math.Abs(float64(x[i] - y[i])); d > c.tol*4+1e-7 {
				t.Fatalf("%s: x[%d] = %g decoded as %g", c.t, i, x[i], y[i])
			}
		}
	}
	// ±1 rows, as the demo model's embeddings, are exact in Q8_0 up to the
	// fp16 scale, and the largest magnitude is exact in Q4_0.
	ones := make([]float32, 32)
	for i := range ones {
		ones[i] = float32(1 - 2*(i%2))
	}
	b, _ := AppendRow(nil, TypeQ4_0, ones)
	if y := dequant(TypeQ4_0, b, 32); y[0] != 1 {
		t.Errorf("Q4_0 of +1 decodes to %g", y[0])
	}
	if _, err := AppendRow(nil, TypeQ8_0, make([]float32, 33)); err == nil {
		t.Error("partial block accepted")
	}
	if _, err := AppendRow(nil, TypeQ4_K, make([]float32, 256)); err == nil {
		t.Error("Q4_K encoding claimed")
	}
	for _, typ := range []TensorType{TypeQ8_0, TypeQ4_0} {
		for i, v := range dequant(typ, mustRow(t, typ, make([]float32, 64)), 64) {
			if v != 0 {
				t.Fatalf("%s: zero row decodes to %g at %d", typ, v, i)
			}
		}
	}
}

func mustRow(t *testing.T, typ TensorType, x []float32) []byte {
	b, err := AppendRow(nil, typ, x)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
