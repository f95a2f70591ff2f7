package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Limits on what the reader accepts. Real models stay far below them; a file
// beyond them is refused rather than allowed to drive allocations.
const (
	MaxKVCount     = 1 << 16   // metadata entries
	MaxTensorCount = 1 << 20   // tensors
	MaxKeyLen      = 1 << 12   // bytes of a metadata key
	MaxStringLen   = 1 << 24   // bytes of one string value (tokenizer JSON blobs reach MBs)
	MaxArrayLen    = 1 << 24   // elements of one array
	MaxHeaderBytes = 512 << 20 // metadata and tensor infos together
)

// File is a GGUF header: metadata, tensor infos and where the data begins.
type File struct {
	Version    uint32
	KV         []KV
	Tensors    []TensorInfo
	Alignment  uint64
	DataOffset uint64 // file offset of the data section
	Size       uint64 // file size
	kvIndex    map[string]int
}

// Get returns the value of key.
func (f *File) Get(key string) (any, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return f.KV[i].Value, true
}

// Open reads and validates the header of the GGUF file at path.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open model: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat model: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("model %s is not a regular file", path)
	}
	return Read(fd, st.Size())
}

// Read reads and validates a GGUF header from r, a file of size bytes. It
// checks magic and version, every count and length against the limits and
// the bytes left in the file, value types, duplicate keys and tensor names,
// tensor types and shapes, and that the tensors' data lies inside the file,
// aligned, in order and without overlap (as ggml requires).
func Read(r io.Reader, size int64) (*File, error) {
	d := &decoder{r: bufio.NewReaderSize(r, 1<<16), size: size}
	f, err := d.file()
	if err != nil {
		return nil, err
	}
	return f, nil
}

type decoder struct {
	r    *bufio.Reader
	off  int64
	size int64
	buf  [8]byte
}

// need fails unless n more bytes exist in the file and the header budget.
func (d *decoder) need(n uint64, what string) error {
	left := uint64(d.size - d.off)
	if n > left {
		return fmt.Errorf("%w: %s needs %d bytes at offset %d, only %d left", ErrTruncated, what, n, d.off, left)
	}
	if uint64(d.off)+n > MaxHeaderBytes {
		return fmt.Errorf("%w: header larger than %d bytes at %s", ErrBounds, MaxHeaderBytes, what)
	}
	return nil
}

func (d *decoder) read(p []byte, what string) error {
	if err := d.need(uint64(len(p)), what); err != nil {
		return err
	}
	n, err := io.ReadFull(d.r, p)
	d.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: reading %s at offset %d", ErrTruncated, what, d.off)
		}
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}

func (d *decoder) u32(what string) (uint32, error) {
	err := d.read(d.buf[:4], what)
	return binary.LittleEndian.Uint32(d.buf[:4]), err
}

func (d *decoder) u64(what string) (uint64, error) {
	err := d.read(d.buf[:8], what)
	return binary.LittleEndian.Uint64(d.buf[:8]), err
}

func (d *decoder) str(what string, max uint64) (string, error) {
	return d.strFn(func() string { return what }, max)
}

// strFn reads a string; what names it in errors and is only called then,
// which keeps reading a 128k-token vocabulary free of formatting.
func (d *decoder) strFn(what func() string, max uint64) (string, error) {
	if err := d.read(d.buf[:8], "length"); err != nil {
		return "", fmt.Errorf("%w (%s)", err, what())
	}
	n := binary.LittleEndian.Uint64(d.buf[:8])
	if n > max {
		return "", fmt.Errorf("%w: %s is %d bytes, limit %d", ErrBounds, what(), n, max)
	}
	if err := d.need(n, "string"); err != nil {
		return "", fmt.Errorf("%w (%s)", err, what())
	}
	b := make([]byte, n) // bounded by max and by the bytes left in the file
	if err := d.read(b, "string"); err != nil {
		return "", fmt.Errorf("%w (%s)", err, what())
	}
	return string(b), nil
}

func (d *decoder) file() (*File, error) {
	var magic [4]byte
	if err := d.read(magic[:], "magic"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMagic, err)
	}
	if string(magic[:]) != Magic {
		return nil, fmt.Errorf("%w: magic %q, want %q", ErrMagic, magic[:], Magic)
	}
	version, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	if version != 2 && version != 3 {
		return nil, fmt.Errorf("%w: %d (want 2 or 3)", ErrVersion, version)
	}
	nt, err := d.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nkv, err := d.u64("metadata count")
	if err != nil {
		return nil, err
	}
	if nt > MaxTensorCount {
		return nil, fmt.Errorf("%w: tensor count %d exceeds %d", ErrBounds, nt, MaxTensorCount)
	}
	if nkv > MaxKVCount {
		return nil, fmt.Errorf("%w: metadata count %d exceeds %d", ErrBounds, nkv, MaxKVCount)
	}
	// Every entry takes at least 12 bytes (key length + type), every tensor
	// info at least 28, so the counts cannot claim more than the file holds.
	if err := d.need(nkv*12+nt*28, fmt.Sprintf("%d metadata entries and %d tensor infos", nkv, nt)); err != nil {
		return nil, err
	}
	f := &File{Version: version, Alignment: DefaultAlignment, Size: uint64(d.size), kvIndex: map[string]int{}}
	for i := uint64(0); i < nkv; i++ {
		kv, err := d.kv(i)
		if err != nil {
			return nil, err
		}
		if _, dup := f.kvIndex[kv.Key]; dup {
			return nil, fmt.Errorf("%w: metadata key %q", ErrDuplicate, kv.Key)
		}
		f.kvIndex[kv.Key] = len(f.KV)
		f.KV = append(f.KV, kv)
	}
	if v, ok := f.Get(KeyAlignment); ok {
		a, ok := v.(uint32)
		if !ok {
			return nil, fmt.Errorf("%w: %s has type %T, want uint32", ErrMetadata, KeyAlignment, v)
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("%w: %s %d is not a power of two", ErrMetadata, KeyAlignment, a)
		}
		f.Alignment = uint64(a)
	}
	names := map[string]bool{}
	for i := uint64(0); i < nt; i++ {
		ti, err := d.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		if names[ti.Name] {
			return nil, fmt.Errorf("%w: tensor %q", ErrDuplicate, ti.Name)
		}
		names[ti.Name] = true
		f.Tensors = append(f.Tensors, ti)
	}
	f.DataOffset = pad(uint64(d.off), f.Alignment)
	if err := f.checkPlacement(); err != nil {
		return nil, err
	}
	return f, nil
}

func (d *decoder) kv(i uint64) (KV, error) {
	key, err := d.str(fmt.Sprintf("metadata key %d", i), MaxKeyLen)
	if err != nil {
		return KV{}, err
	}
	if key == "" {
		return KV{}, fmt.Errorf("%w: metadata key %d is empty", ErrMetadata, i)
	}
	t, err := d.u32(fmt.Sprintf("type of %q", key))
	if err != nil {
		return KV{}, err
	}
	v, err := d.value(key, ValueType(t))
	if err != nil {
		return KV{}, err
	}
	return KV{Key: key, Value: v}, nil
}

func (d *decoder) value(key string, t ValueType) (any, error) {
	if !t.valid() {
		return nil, fmt.Errorf("%w: key %q has unknown value type %d", ErrMetadata, key, uint32(t))
	}
	switch t {
	case ValueString:
		return d.str(fmt.Sprintf("value of %q", key), MaxStringLen)
	case ValueArray:
		return d.array(key)
	}
	var b [8]byte
	if err := d.read(b[:t.size()], fmt.Sprintf("value of %q", key)); err != nil {
		return nil, err
	}
	return scalar(t, b[:t.size()]), nil
}

func scalar(t ValueType, b []byte) any {
	le := binary.LittleEndian
	switch t {
	case ValueUint8:
		return b[0]
	case ValueInt8:
		return int8(b[0])
	case ValueUint16:
		return le.Uint16(b)
	case ValueInt16:
		return int16(le.Uint16(b))
	case ValueUint32:
		return le.Uint32(b)
	case ValueInt32:
		return int32(le.Uint32(b))
	case ValueFloat32:
		return math.Float32frombits(le.Uint32(b))
	case ValueBool:
		return b[0] != 0
	case ValueUint64:
		return le.Uint64(b)
	case ValueInt64:
		return int64(le.Uint64(b))
	case ValueFloat64:
		return math.Float64frombits(le.Uint64(b))
	}
	return nil
}

func (d *decoder) array(key string) (any, error) {
	et, err := d.u32(fmt.Sprintf("element type of %q", key))
	if err != nil {
		return nil, err
	}
	elem := ValueType(et)
	if !elem.valid() || elem == ValueArray {
		return nil, fmt.Errorf("%w: array %q has element type %s", ErrMetadata, key, elem)
	}
	n, err := d.u64(fmt.Sprintf("length of %q", key))
	if err != nil {
		return nil, err
	}
	if n > MaxArrayLen {
		return nil, fmt.Errorf("%w: array %q has %d elements, limit %d", ErrBounds, key, n, MaxArrayLen)
	}
	minSize := uint64(elem.size())
	if elem == ValueString {
		minSize = 8
	}
	if err := d.need(n*minSize, fmt.Sprintf("%d elements of %q", n, key)); err != nil {
		return nil, err
	}
	if elem == ValueString {
		// Grown as read: the length check above bounds it by the file's bytes.
		out := make([]string, 0, min(n, 1<<16))
		for i := uint64(0); i < n; i++ {
			s, err := d.strFn(func() string { return fmt.Sprintf("%s[%d]", key, i) }, MaxStringLen)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	raw := make([]byte, n*minSize) // at most MaxArrayLen*8 bytes, and within the file
	if err := d.read(raw, fmt.Sprintf("elements of %q", key)); err != nil {
		return nil, err
	}
	return decodeArray(elem, raw, int(n)), nil
}

func decodeArray(t ValueType, raw []byte, n int) any {
	sz := t.size()
	switch t {
	case ValueUint8:
		return raw
	case ValueInt8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out
	case ValueBool:
		out := make([]bool, n)
		for i := range out {
			out[i] = raw[i] != 0
		}
		return out
	}
	each := func(f func(i int, b []byte)) {
		for i := 0; i < n; i++ {
			f(i, raw[i*sz:(i+1)*sz])
		}
	}
	switch t {
	case ValueUint16:
		out := make([]uint16, n)
		each(func(i int, b []byte) { out[i] = scalar(t, b).(uint16) })
		return out
	case ValueInt16:
		out := make([]int16, n)
		each(func(i int, b []byte) { out[i] = scalar(t, b).(int16) })
		return out
	case ValueUint32:
		out := make([]uint32, n)
		each(func(i int, b []byte) { out[i] = binary.LittleEndian.Uint32(b) })
		return out
	case ValueInt32:
		out := make([]int32, n)
		each(func(i int, b []byte) { out[i] = int32(binary.LittleEndian.Uint32(b)) })
		return out
	case ValueFloat32:
		out := make([]float32, n)
		each(func(i int, b []byte) { out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b)) })
		return out
	case ValueUint64:
		out := make([]uint64, n)
		each(func(i int, b []byte) { out[i] = binary.LittleEndian.Uint64(b) })
		return out
	case ValueInt64:
		out := make([]int64, n)
		each(func(i int, b []byte) { out[i] = int64(binary.LittleEndian.Uint64(b)) })
		return out
	case ValueFloat64:
		out := make([]float64, n)
		each(func(i int, b []byte) { out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b)) })
		return out
	}
	return nil
}

func (d *decoder) tensorInfo(i uint64) (TensorInfo, error) {
	name, err := d.str(fmt.Sprintf("tensor %d name", i), MaxKeyLen)
	if err != nil {
		return TensorInfo{}, err
	}
	if name == "" || len(name) > MaxNameLen {
		return TensorInfo{}, fmt.Errorf("%w: tensor %d name %q must be 1..%d bytes", ErrBounds, i, name, MaxNameLen)
	}
	nd, err := d.u32(fmt.Sprintf("dimension count of tensor %q", name))
	if err != nil {
		return TensorInfo{}, err
	}
	if nd == 0 || nd > MaxDims {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q has %d dimensions, want 1..%d", ErrShape, name, nd, MaxDims)
	}
	ti := TensorInfo{Name: name, Shape: make([]uint64, nd)}
	for j := range ti.Shape {
		if ti.Shape[j], err = d.u64(fmt.Sprintf("dimension %d of tensor %q", j, name)); err != nil {
			return TensorInfo{}, err
		}
	}
	t, err := d.u32(fmt.Sprintf("type of tensor %q", name))
	if err != nil {
		return TensorInfo{}, err
	}
	ti.Type = TensorType(t)
	if ti.Offset, err = d.u64(fmt.Sprintf("offset of tensor %q", name)); err != nil {
		return TensorInfo{}, err
	}
	if _, err := ti.Size(); err != nil { // type known, shape sane, rows whole blocks
		return TensorInfo{}, err
	}
	return ti, nil
}

// checkPlacement requires what ggml's loader requires: each tensor starts
// where the previous one's padded data ends, and all of it is in the file.
func (f *File) checkPlacement() error {
	if f.DataOffset > f.Size && len(f.Tensors) > 0 {
		return fmt.Errorf("%w: data section starts at %d, past the end of the %d-byte file", ErrTensorData, f.DataOffset, f.Size)
	}
	avail := f.Size - min(f.DataOffset, f.Size)
	var expect uint64
	for i, t := range f.Tensors {
		size, _ := t.Size() // validated in tensorInfo
		switch {
		case t.Offset%f.Alignment != 0:
			return fmt.Errorf("%w: tensor %q offset %d is not a multiple of the alignment %d", ErrTensorData, t.Name, t.Offset, f.Alignment)
		case t.Offset < expect:
			return fmt.Errorf("%w: tensor %q at data offset %d overlaps tensor %q (ends at %d)", ErrTensorData, t.Name, t.Offset, f.Tensors[i-1].Name, expect)
		case t.Offset > expect:
			return fmt.Errorf("%w: tensor %q at data offset %d leaves a gap after %d", ErrTensorData, t.Name, t.Offset, expect)
		case t.Offset > avail || size > avail-t.Offset:
			return fmt.Errorf("%w: tensor %q data [%d, %d) lies beyond the file's %d data bytes", ErrTensorData, t.Name, t.Offset, t.Offset+size, avail)
		}
		expect = t.Offset + pad(size, f.Alignment)
	}
	return nil
}
