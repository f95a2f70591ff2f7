package engine

/*
#include "kwyre_llama.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// argmax is the C sampler's greedy pick, for tests.
func argmax(x []float32) int {
	if len(x) == 0 {
		return 0
	}
	return int(C.kw_argmax((*C.float)(unsafe.Pointer(&x[0])), C.int32_t(len(x))))
}

// KVNonZero reads the slot's KV cache back from wherever it lives (GPU
// memory included) and returns how many of its bytes are not zero, out of
// total. It needs an engine loaded with Config.KVProbe and a slot that has
// evaluated at least once; it is how tests show that a wipe zeroes the KV
// data on the device, not just forgets it.
func (s *Slot) KVNonZero() (nonzero, total int64, err error) {
	var nz, tot C.int64_t
	switch n := C.kw_slot_kv_nonzero(s.c, &nz, &tot); {
	case n == -1:
		return 0, 0, errors.New("no KV tensors recorded: load with Config.KVProbe and evaluate first")
	case n < 0:
		return 0, 0, fmt.Errorf("read back KV tensors: status %d", n)
	}
	return int64(nz), int64(tot), nil
}

// DecodeProfile splits the time of single-token decoding steps.
type DecodeProfile struct {
	Tokens int
	Decode time.Duration // in llama_decode: building and launching the graph
	Wait   time.Duration // in llama_synchronize: waiting for the device
	Sample time.Duration // reading the logits and taking the argmax
}

// ProfileDecode decodes n single tokens after what the slot holds, as
// llama-bench's tg test does, feeding tok each time or (sample) the argmax
// of the last logits, and says where the time went. It leaves the slot
// wiped.
func (s *Slot) ProfileDecode(tok int32, n int, sample bool) (DecodeProfile, error) {
	pos := len(s.cached)
	if pos+n > cap(s.cached) {
		return DecodeProfile{}, &ContextFullError{Limit: cap(s.cached), Need: pos + n}
	}
	var t [3]C.double
	rc := C.kw_profile_decode(s.c, C.int32_t(tok), C.int32_t(pos), C.int32_t(n), C.bool(sample), &t[0])
	s.wipeLocal()
	if rc != 0 {
		return DecodeProfile{}, &DecodeError{Status: int(rc)}
	}
	sec := func(v C.double) time.Duration { return time.Duration(float64(v) * 1e9) }
	return DecodeProfile{Tokens: n, Decode: sec(t[0]), Wait: sec(t[1]), Sample: sec(t[2])}, nil
}
