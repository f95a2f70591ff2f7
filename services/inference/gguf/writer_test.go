package gguf_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kwyre/kwyre/services/inference/gguf"
)

func TestRoundTrip(t *testing.T) {
	kvs := []gguf.KV{
		{Key: "a.u8", Value: uint8(200)}, {Key: "a.i8", Value: int8(-5)},
		{Key: "a.u16", Value: uint16(65000)}, {Key: "a.i16", Value: int16(-300)},
		{Key: "a.u32", Value: uint32(1 << 31)}, {Key: "a.i32", Value: int32(-1 << 30)},
		{Key: "a.f32", Value: float32(1.5)}, {Key: "a.bool", Value: true},
		{Key: "a.str", Value: "héllo"}, {Key: "a.u64", Value: uint64(1 << 60)},
		{Key: "a.i64", Value: int64(-1 << 60)}, {Key: "a.f64", Value: 2.25},
		{Key: "a.empty", Value: ""},
		{Key: "arr.u8", Value: []uint8{1, 2}}, {Key: "arr.i8", Value: []int8{-1}},
		{Key: "arr.u16", Value: []uint16{7}}, {Key: "arr.i16", Value: []int16{-7}},
		{Key: "arr.u32", Value: []uint32{1, 2, 3}}, {Key: "arr.i32", Value: []int32{-3}},
		{Key: "arr.f32", Value: []float32{0.5}}, {Key: "arr.bool", Value: []bool{true, false}},
		{Key: "arr.str", Value: []string{"a", "", "ccc"}}, {Key: "arr.u64", Value: []uint64{9}},
		{Key: "arr.i64", Value: []int64{-9}}, {Key: "arr.f64", Value: []float64{0.25}},
		{Key: "arr.none", Value: []string{}},
		{Key: gguf.KeyAlignment, Value: uint32(64)},
	}
	tensors := []gguf.TensorInfo{
		{Name: "a", Shape: []uint64{3}, Type: gguf.TypeF32},
		{Name: "b", Shape: []uint64{32, 2}, Type: gguf.TypeQ8_0},
		{Name: "c", Shape: []uint64{5, 1, 1, 2}, Type: gguf.TypeF16},
	}
	var buf bytes.Buffer
	w, err := gguf.NewWriter(&buf, kvs, tensors)
	if err != nil {
		t.Fatal(err)
	}
	// Data in odd-sized chunks crossing tensor boundaries.
	data := make([]byte, 12+68+20)
	for i := range data {
		data[i] = byte(i)
	}
	for _, n := range []int{5, 50, 45} {
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.KV, kvs) {
		t.Errorf("metadata changed in the round trip:\n got %v\nwant %v", f.KV, kvs)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("alignment %d, data at %d", f.Alignment, f.DataOffset)
	}
	wantOff := []uint64{0, 64, 192}
	for i, ti := range f.Tensors {
		if ti.Name != tensors[i].Name || !reflect.DeepEqual(ti.Shape, tensors[i].Shape) || ti.Type != tensors[i].Type || ti.Offset != wantOff[i] {
			t.Errorf("tensor %d = %+v", i, ti)
		}
	}
	c := f.Tensors[2]
	if got := buf.Bytes()[f.DataOffset+c.Offset]; got != 80 {
		t.Errorf("tensor c starts with byte %d, want 80", got)
	}
	if uint64(buf.Len()) != f.DataOffset+192+64 {
		t.Errorf("file is %d bytes, want the last tensor padded", buf.Len())
	}
}

func TestWriterRefuses(t *testing.T) {
	f32 := []gguf.TensorInfo{{Name: "t", Shape: []uint64{4}, Type: gguf.TypeF32}}
	cases := []struct {
		name    string
		kvs     []gguf.KV
		tensors []gguf.TensorInfo
		want    error
		msg     string
	}{
		{"duplicate key", []gguf.KV{{Key: "k", Value: uint8(1)}, {Key: "k", Value: uint8(2)}}, nil, gguf.ErrDuplicate, `"k"`},
		{"empty key", []gguf.KV{{Key: "", Value: uint8(1)}}, nil, gguf.ErrMetadata, "empty"},
		{"unsupported value", []gguf.KV{{Key: "k", Value: 3}}, nil, nil, "unsupported metadata value type int"},
		{"nested array", []gguf.KV{{Key: "k", Value: [][]string{{"a"}}}}, nil, nil, "unsupported"},
		{"bad alignment", []gguf.KV{{Key: gguf.KeyAlignment, Value: uint32(3)}}, nil, gguf.ErrMetadata, "power of two"},
		{"duplicate tensor", nil, append(f32, f32...), gguf.ErrDuplicate, `tensor "t"`},
		{"long name", nil, []gguf.TensorInfo{{Name: strings.Repeat("x", 64), Shape: []uint64{1}, Type: gguf.TypeF32}}, gguf.ErrBounds, "1..63"},
		{"unknown type", nil, []gguf.TensorInfo{{Name: "t", Shape: []uint64{32}, Type: 5}}, gguf.ErrTensorType, `"t"`},
		{"partial block", nil, []gguf.TensorInfo{{Name: "t", Shape: []uint64{40}, Type: gguf.TypeQ4_0}}, gguf.ErrTensorSize, "block size 32"},
		{"no shape", nil, []gguf.TensorInfo{{Name: "t", Type: gguf.TypeF32}}, gguf.ErrShape, "0 dimensions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := gguf.NewWriter(&bytes.Buffer{}, c.kvs, c.tensors)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v, want %v mentioning %q", err, c.want, c.msg)
			}
		})
	}
	// Too little data, then too much.
	w, err := gguf.NewWriter(&bytes.Buffer{}, nil, f32)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]byte, 10))
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "10 of 16") {
		t.Errorf("short data: Close = %v", err)
	}
	if _, err := w.Write(make([]byte, 7)); err == nil || !strings.Contains(err.Error(), "past the last tensor") {
		t.Errorf("long data: Write = %v", err)
	}
}
