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
	flags := 0
	if sample {
		flags = C.KW_PROFILE_SAMPLE
	}
	return s.profileDecode(tok, n, flags)
}

// ProfileDecodeNoLogits is ProfileDecode asking for no logits, so that no
// logits are copied back from the device.
func (s *Slot) ProfileDecodeNoLogits(tok int32, n int) (DecodeProfile, error) {
	return s.profileDecode(tok, n, C.KW_PROFILE_NO_LOGITS)
}

func (s *Slot) profileDecode(tok int32, n int, flags int) (DecodeProfile, error) {
	pos := len(s.cached)
	if pos+n > cap(s.cached) {
		return DecodeProfile{}, &ContextFullError{Limit: cap(s.cached), Need: pos + n}
	}
	var t [3]C.double
	rc := C.kw_profile_decode(s.c, C.int32_t(tok), C.int32_t(pos), C.int32_t(n), C.int(flags), &t[0])
	s.wipeLocal()
	if rc != 0 {
		return DecodeProfile{}, &DecodeError{Status: int(rc)}
	}
	sec := func(v C.double) time.Duration { return time.Duration(float64(v) * 1e9) }
	return DecodeProfile{Tokens: n, Decode: sec(t[0]), Wait: sec(t[1]), Sample: sec(t[2])}, nil
}

// EvalPrompt evaluates toks (at most the batch size) after what the slot
// holds, asking for the logits of the last one, waits for the device and
// wipes the slot: for benchmarks of what a prompt leaves behind.
func (s *Slot) EvalPrompt(toks []int32) error {
	pos := len(s.cached)
	if len(toks) == 0 || len(toks) > int(C.kw_slot_n_batch(s.c)) || pos+len(toks) > cap(s.cached) {
		return fmt.Errorf("evaluate %d tokens after %d: the batch holds %d and the context %d",
			len(toks), pos, int(C.kw_slot_n_batch(s.c)), cap(s.cached))
	}
	rc := C.kw_eval(s.c, (*C.int32_t)(unsafe.Pointer(&toks[0])), C.int32_t(len(toks)), C.int32_t(pos))
	C.kw_slot_scrub(s.c)
	s.wipeLocal()
	if rc != 0 {
		return &DecodeError{Status: int(rc)}
	}
	return nil
}

// PromptLogits evaluates toks (at most the batch size) after what the slot
// holds, copies the last token's logits into dst (the vocabulary's size) and
// wipes the slot: for checks that compare backends' arithmetic.
func (s *Slot) PromptLogits(toks []int32, dst []float32) error {
	if len(dst) != s.e.info.NVocab {
		return fmt.Errorf("logits: have room for %d, the vocabulary has %d", len(dst), s.e.info.NVocab)
	}
	pos := len(s.cached)
	if len(toks) == 0 || len(toks) > int(C.kw_slot_n_batch(s.c)) || pos+len(toks) > cap(s.cached) {
		return fmt.Errorf("evaluate %d tokens after %d: the batch holds %d and the context %d",
			len(toks), pos, int(C.kw_slot_n_batch(s.c)), cap(s.cached))
	}
	rc := C.kw_eval(s.c, (*C.int32_t)(unsafe.Pointer(&toks[0])), C.int32_t(len(toks)), C.int32_t(pos))
	if rc == 0 && C.kw_slot_last_logits(s.c, (*C.float)(unsafe.Pointer(&dst[0]))) != 0 {
		rc = -1
	}
	C.kw_slot_scrub(s.c)
	s.wipeLocal()
	if rc != 0 {
		return &DecodeError{Status: int(rc)}
	}
	return nil
}

// drawer is kw_draw alone over a full vocabulary, for tests and benchmarks.
type drawer struct {
	scratch    C.kw_draw_scratch
	rng        [4]C.uint64_t
	temp, topP float32
}

func newDrawer(temp, topP float32, seed uint64, nVocab int) *drawer {
	d := &drawer{temp: temp, topP: topP}
	if C.kw_draw_scratch_init(&d.scratch, C.int32_t(nVocab)) != 0 {
		panic("kw_draw_scratch_init: out of memory")
	}
	C.kw_rng_seed(&d.rng[0], C.uint64_t(seed))
	return d
}

// draw samples from logits.
func (d *drawer) draw(logits []float32) int {
	return int(C.kw_draw((*C.float)(unsafe.Pointer(&logits[0])), C.int32_t(len(logits)), C.float(d.temp),
		C.float(d.topP), &d.rng[0], &d.scratch, nil))
}

// drawKept is draw that also says how many tokens top-p kept.
func (d *drawer) drawKept(logits []float32) (tok, kept int) {
	var k C.int32_t
	t := C.kw_draw((*C.float)(unsafe.Pointer(&logits[0])), C.int32_t(len(logits)), C.float(d.temp),
		C.float(d.topP), &d.rng[0], &d.scratch, &k)
	return int(t), int(k)
}

func (d *drawer) free() { C.kw_draw_scratch_free(&d.scratch) }

// refSampler is llama.cpp's own chain (temperature, top-p, a seeded draw),
// the reference kw_draw is measured against.
type refSampler struct {
	c    *C.struct_llama_sampler
	cand []C.llama_token_data
}

func newRefSampler(temp, topP float32, seed uint32, nVocab int) *refSampler {
	return &refSampler{c: C.kw_ref_sampler(C.float(temp), C.float(topP), C.uint32_t(seed)),
		cand: make([]C.llama_token_data, nVocab)}
}

func (s *refSampler) sample(logits []float32) int {
	return int(C.kw_ref_sample(s.c, &s.cand[0], (*C.float)(unsafe.Pointer(&logits[0])), C.int32_t(len(logits))))
}

func (s *refSampler) free() { C.llama_sampler_free(s.c) }

// SamplingCost times one token's sampling over logits at temp and topP, with
// the engine's sampler and with llama.cpp's chain it replaced (the
// reference), averaged over iters draws each.
func SamplingCost(logits []float32, temp, topP float32, iters int) (kwyre, llamaCpp time.Duration) {
	d := newDrawer(temp, topP, 1, len(logits))
	defer d.free()
	r := newRefSampler(temp, topP, 1, len(logits))
	defer r.free()
	t0 := time.Now()
	for i := 0; i < iters; i++ {
		d.draw(logits)
	}
	t1 := time.Now()
	for i := 0; i < iters; i++ {
		r.sample(logits)
	}
	t2 := time.Now()
	return t1.Sub(t0) / time.Duration(iters), t2.Sub(t1) / time.Duration(iters)
}
