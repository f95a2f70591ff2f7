package gguf

import (
	"fmt"
	"math"
)

// TensorInfo describes one tensor. Shape lists ggml's ne[] (the innermost,
// contiguous dimension first). Offset is relative to the data section.
type TensorInfo struct {
	Name   string
	Shape  []uint64
	Type   TensorType
	Offset uint64
}

// Elements is the number of elements in t, or an error when the shape is
// empty, has a zero dimension, or overflows int64 as ggml counts it.
func (t TensorInfo) Elements() (uint64, error) {
	if len(t.Shape) == 0 || len(t.Shape) > MaxDims {
		return 0, fmt.Errorf("%w: tensor %q has %d dimensions, want 1..%d", ErrShape, t.Name, len(t.Shape), MaxDims)
	}
	n := uint64(1)
	for i, d := range t.Shape {
		if d == 0 {
			return 0, fmt.Errorf("%w: tensor %q dimension %d is 0", ErrShape, t.Name, i)
		}
		if d > math.MaxInt64/n {
			return 0, fmt.Errorf("%w: tensor %q shape %v overflows int64", ErrBounds, t.Name, t.Shape)
		}
		n *= d
	}
	return n, nil
}

// Size is the number of data bytes of t as ggml computes it.
func (t TensorInfo) Size() (uint64, error) {
	if !t.Type.Known() {
		return 0, fmt.Errorf("%w: tensor %q has type %d", ErrTensorType, t.Name, uint32(t.Type))
	}
	n, err := t.Elements()
	if err != nil {
		return 0, err
	}
	if t.Shape[0]%t.Type.BlockSize() != 0 {
		return 0, fmt.Errorf("%w: tensor %q row of %d elements is not a multiple of %s's block size %d",
			ErrTensorSize, t.Name, t.Shape[0], t.Type, t.Type.BlockSize())
	}
	blocks := n / t.Type.BlockSize()
	if blocks > math.MaxInt64/t.Type.TypeSize() {
		return 0, fmt.Errorf("%w: tensor %q size overflows int64", ErrBounds, t.Name)
	}
	return blocks * t.Type.TypeSize(), nil
}

func pad(n, align uint64) uint64 {
	return (n + align - 1) / align * align
}
