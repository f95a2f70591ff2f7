package gguf

import (
	"fmt"
	"math"
)

// KV is one metadata entry. Value holds one of the Go types that map to a
// GGUF value type: uint8, int8, uint16, int16, uint32, int32, float32, bool,
// string, uint64, int64, float64, or a slice of one of them (an array).
// The reader returns exactly these types, so a value keeps its GGUF type.
type KV struct {
	Key   string
	Value any
}

// typeOf reports the GGUF type of a Go value and, for arrays, the element type.
func typeOf(v any) (t, elem ValueType, n int, err error) {
	switch x := v.(type) {
	case uint8:
		return ValueUint8, 0, 0, nil
	case int8:
		return ValueInt8, 0, 0, nil
	case uint16:
		return ValueUint16, 0, 0, nil
	case int16:
		return ValueInt16, 0, 0, nil
	case uint32:
		return ValueUint32, 0, 0, nil
	case int32:
		return ValueInt32, 0, 0, nil
	case float32:
		return ValueFloat32, 0, 0, nil
	case bool:
		return ValueBool, 0, 0, nil
	case string:
		return ValueString, 0, 0, nil
	case uint64:
		return ValueUint64, 0, 0, nil
	case int64:
		return ValueInt64, 0, 0, nil
	case float64:
		return ValueFloat64, 0, 0, nil
	case []uint8:
		return ValueArray, ValueUint8, len(x), nil
	case []int8:
		return ValueArray, ValueInt8, len(x), nil
	case []uint16:
		return ValueArray, ValueUint16, len(x), nil
	case []int16:
		return ValueArray, ValueInt16, len(x), nil
	case []uint32:
		return ValueArray, ValueUint32, len(x), nil
	case []int32:
		return ValueArray, ValueInt32, len(x), nil
	case []float32:
		return ValueArray, ValueFloat32, len(x), nil
	case []bool:
		return ValueArray, ValueBool, len(x), nil
	case []string:
		return ValueArray, ValueString, len(x), nil
	case []uint64:
		return ValueArray, ValueUint64, len(x), nil
	case []int64:
		return ValueArray, ValueInt64, len(x), nil
	case []float64:
		return ValueArray, ValueFloat64, len(x), nil
	}
	return 0, 0, 0, fmt.Errorf("unsupported metadata value type %T", v)
}

// appendValue appends v's encoding (without its type tag) to b.
func appendValue(b []byte, v any) []byte {
	le := func(b []byte, u uint64, n int) []byte {
		for i := 0; i < n; i++ {
			b = append(b, byte(u>>(8*i)))
		}
		return b
	}
	switch x := v.(type) {
	case uint8:
		return append(b, x)
	case int8:
		return append(b, byte(x))
	case uint16:
		return le(b, uint64(x), 2)
	case int16:
		return le(b, uint64(uint16(x)), 2)
	case uint32:
		return le(b, uint64(x), 4)
	case int32:
		return le(b, uint64(uint32(x)), 4)
	case float32:
		return le(b, uint64(math.Float32bits(x)), 4)
	case bool:
		if x {
			return append(b, 1)
		}
		return append(b, 0)
	case string:
		b = le(b, uint64(len(x)), 8)
		return append(b, x...)
	case uint64:
		return le(b, x, 8)
	case int64:
		return le(b, uint64(x), 8)
	case float64:
		return le(b, math.Float64bits(x), 8)
	}
	_, elem, n, err := typeOf(v)
	if err != nil {
		panic(err) // callers check typeOf first
	}
	b = le(b, uint64(elem), 4)
	b = le(b, uint64(n), 8)
	switch x := v.(type) {
	case []uint8:
		return append(b, x...)
	case []int8:
		for _, e := range x {
			b = append(b, byte(e))
		}
	case []uint16:
		for _, e := range x {
			b = le(b, uint64(e), 2)
		}
	case []int16:
		for _, e := range x {
			b = le(b, uint64(uint16(e)), 2)
		}
	case []uint32:
		for _, e := range x {
			b = le(b, uint64(e), 4)
		}
	case []int32:
		for _, e := range x {
			b = le(b, uint64(uint32(e)), 4)
		}
	case []float32:
		for _, e := range x {
			b = le(b, uint64(math.Float32bits(e)), 4)
		}
	case []bool:
		for _, e := range x {
			if e {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	case []string:
		for _, e := range x {
			b = le(b, uint64(len(e)), 8)
			b = append(b, e...)
		}
	case []uint64:
		for _, e := range x {
			b = le(b, e, 8)
		}
	case []int64:
		for _, e := range x {
			b = le(b, uint64(e), 8)
		}
	case []float64:
		for _, e := range x {
			b = le(b, math.Float64bits(e), 8)
		}
	}
	return b
}
