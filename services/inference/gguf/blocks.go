package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Float16 converts f to IEEE 754 half precision (round to nearest even),
// the ggml_fp16_t ggml stores scales and F16 weights in.
func Float16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127 > 15: // overflow
		return sign | 0x7c00
	case exp-127 >= -14: // normal
		e := uint32(exp-127+15) << 10
		m := mant >> 13
		h := e | m
		rest := mant & 0x1fff
		if rest > 0x1000 || (rest == 0x1000 && m&1 == 1) {
			h++ // may carry into the exponent, which is still correct
		}
		return sign | uint16(h)
	case exp-127 >= -25: // subnormal half
		mant |= 0x800000
		shift := uint32(-14-(exp-127)) + 13
		m := mant >> shift
		rest := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rest > half || (rest == half && m&1 == 1) {
			m++
		}
		return sign | uint16(m)
	}
	return sign
}

// Float16To32 converts a half-precision value to float32.
func Float16To32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(mant) / 1024 / 16384
		if sign != 0 {
			return -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// AppendRow appends the encoding of x as tensor type t to dst. len(x) must
// be a multiple of t's block size. F32, F16, Q8_0 and Q4_0 are encoded as
// ggml's reference quantizers do.
func AppendRow(dst []byte, t TensorType, x []float32) ([]byte, error) {
	if !t.Known() {
		return dst, fmt.Errorf("%w: %d", ErrTensorType, uint32(t))
	}
	if uint64(len(x))%t.BlockSize() != 0 {
		return dst, fmt.Errorf("%w: %d values are not a multiple of %s's block size %d", ErrTensorSize, len(x), t, t.BlockSize())
	}
	switch t {
	case TypeF32:
		for _, v := range x {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
		}
	case TypeF16:
		for _, v := range x {
			dst = binary.LittleEndian.AppendUint16(dst, Float16(v))
		}
	case TypeQ8_0:
		for b := 0; b < len(x); b += 32 {
			dst = appendQ8_0(dst, x[b:b+32])
		}
	case TypeQ4_0:
		for b := 0; b < len(x); b += 32 {
			dst = appendQ4_0(dst, x[b:b+32])
		}
	default:
		return dst, fmt.Errorf("encoding %s rows is not implemented", t)
	}
	return dst, nil
}

func appendQ8_0(dst []byte, x []float32) []byte {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	dst = binary.LittleEndian.AppendUint16(dst, Float16(d))
	for _, v := range x {
		dst = append(dst, byte(int8(math.Round(float64(v*id)))))
	}
	return dst
}

func appendQ4_0(dst []byte, x []float32) []byte {
	var amax, vmax float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, vmax = a, v
		}
	}
	d := vmax / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	dst = binary.LittleEndian.AppendUint16(dst, Float16(d))
	q := func(v float32) byte { return byte(min(15, int8(v*id+8.5))) }
	for j := 0; j < 16; j++ {
		dst = append(dst, q(x[j])|q(x[j+16])<<4)
	}
	return dst
}
