package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Writer writes a GGUF file in one pass: NewWriter writes the header, Write
// takes the tensors' data in the order they were declared (any chunking),
// and Close checks that every byte arrived. Nothing but a small buffer is
// held, so files larger than memory can be written.
type Writer struct {
	w       *bufio.Writer
	tensors []TensorInfo
	sizes   []uint64
	align   uint64
	cur     int    // tensor being written
	done    uint64 // bytes of the current tensor written
	err     error
}

// NewWriter validates the metadata and tensor list, assigns tensor offsets
// (honouring general.alignment) and writes the header to w.
func NewWriter(w io.Writer, kvs []KV, tensors []TensorInfo) (*Writer, error) {
	align := uint64(DefaultAlignment)
	seen := make(map[string]bool, len(kvs))
	hdr := make([]byte, 0, 4096)
	hdr = append(hdr, Magic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, Version)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(len(tensors)))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(len(kvs)))
	for _, kv := range kvs {
		if kv.Key == "" {
			return nil, fmt.Errorf("%w: empty metadata key", ErrMetadata)
		}
		if seen[kv.Key] {
			return nil, fmt.Errorf("%w: metadata key %q", ErrDuplicate, kv.Key)
		}
		seen[kv.Key] = true
		t, _, _, err := typeOf(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("metadata key %q: %w", kv.Key, err)
		}
		if kv.Key == KeyAlignment {
			a, ok := kv.Value.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return nil, fmt.Errorf("%w: %s must be a uint32 power of two, got %v", ErrMetadata, KeyAlignment, kv.Value)
			}
			align = uint64(a)
		}
		hdr = appendValue(hdr, kv.Key)
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(t))
		hdr = appendValue(hdr, kv.Value)
	}
	out := &Writer{w: bufio.NewWriterSize(w, 1<<20), align: align}
	names := make(map[string]bool, len(tensors))
	var off uint64
	for _, ti := range tensors {
		if ti.Name == "" || len(ti.Name) > MaxNameLen {
			return nil, fmt.Errorf("%w: tensor name %q must be 1..%d bytes", ErrBounds, ti.Name, MaxNameLen)
		}
		if names[ti.Name] {
			return nil, fmt.Errorf("%w: tensor %q", ErrDuplicate, ti.Name)
		}
		names[ti.Name] = true
		size, err := ti.Size()
		if err != nil {
			return nil, err
		}
		ti.Shape = append([]uint64(nil), ti.Shape...)
		ti.Offset = off
		off += pad(size, align)
		out.tensors = append(out.tensors, ti)
		out.sizes = append(out.sizes, size)
		hdr = appendValue(hdr, ti.Name)
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(ti.Shape)))
		for _, d := range ti.Shape {
			hdr = binary.LittleEndian.AppendUint64(hdr, d)
		}
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(ti.Type))
		hdr = binary.LittleEndian.AppendUint64(hdr, ti.Offset)
	}
	hdr = append(hdr, make([]byte, pad(uint64(len(hdr)), align)-uint64(len(hdr)))...)
	if _, err := out.w.Write(hdr); err != nil {
		return nil, fmt.Errorf("write GGUF header: %w", err)
	}
	return out, nil
}

// Tensors returns the tensor list with the offsets the writer assigned.
func (w *Writer) Tensors() []TensorInfo { return w.tensors }

// Next returns the tensor the next Write continues, and false when all
// tensor data has been written.
func (w *Writer) Next() (TensorInfo, bool) {
	if w.cur >= len(w.tensors) {
		return TensorInfo{}, false
	}
	return w.tensors[w.cur], true
}

// Write appends tensor data. A tensor's padding is written when its last
// byte arrives; writing more than the declared tensors hold is an error.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		if w.cur >= len(w.tensors) {
			w.err = errors.New("gguf: write past the last tensor's data")
			return n, w.err
		}
		left := w.sizes[w.cur] - w.done
		chunk := p
		if uint64(len(chunk)) > left {
			chunk = chunk[:left]
		}
		m, err := w.w.Write(chunk)
		n += m
		w.done += uint64(m)
		if err != nil {
			w.err = fmt.Errorf("write tensor %q: %w", w.tensors[w.cur].Name, err)
			return n, w.err
		}
		p = p[m:]
		if w.done == w.sizes[w.cur] {
			if err := w.finishTensor(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

var zeros [256]byte

func (w *Writer) finishTensor() error {
	padding := pad(w.sizes[w.cur], w.align) - w.sizes[w.cur]
	for padding > 0 {
		k := min(padding, uint64(len(zeros)))
		if _, err := w.w.Write(zeros[:k]); err != nil {
			w.err = fmt.Errorf("write padding after tensor %q: %w", w.tensors[w.cur].Name, err)
			return w.err
		}
		padding -= k
	}
	w.cur++
	w.done = 0
	return nil
}

// Close flushes buffered data and reports an error unless every tensor's
// data was written. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.cur < len(w.tensors) {
		t := w.tensors[w.cur]
		return fmt.Errorf("gguf: tensor %q has %d of %d data bytes written", t.Name, w.done, w.sizes[w.cur])
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("flush GGUF data: %w", err)
	}
	return nil
}
