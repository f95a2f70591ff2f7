package engine

/*
#include "kwyre_llama.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"
)

// Sampling holds one generation's parameters. A Temperature ≤ 0 is greedy.
// TopP outside (0,1) is off. MaxTokens ≤ 0 means until the context is full.
type Sampling struct {
	Temperature float32
	TopP        float32
	Seed        uint64
	MaxTokens   int
	Stop        [][]byte
}

// Result describes one generation (token counts and times, never content):
// PromptTokens = CachedTokens (reused from the slot's KV cache) +
// EvaluatedTokens (computed now).
type Result struct {
	PromptTokens     int
	CachedTokens     int
	EvaluatedTokens  int
	CompletionTokens int
	FinishReason     string // "stop", "length" or "cancelled"
	TimeToFirstToken time.Duration
	Duration         time.Duration
	// Where the token loop's time went (the wait for the prompt's last
	// batch included): in llama_decode (on a GPU building and queuing each
	// token's graph, on the CPU computing it), waiting for the device, and
	// sampling. The rest of Duration is the prompt, detokenizing and the
	// caller's emit.
	DecodeTime, WaitTime, SampleTime time.Duration
}

// Errors of Generate. A ContextFullError matches ErrContextFull.
var (
	ErrContextFull = errors.New("context full")
	ErrWiped       = errors.New("slot wiped during generation")
	ErrEmptyPrompt = errors.New("empty prompt")
)

// ContextFullError says that a prompt and its max_tokens need more
// positions than a slot's context holds. Nothing is truncated.
type ContextFullError struct {
	Limit int // tokens a slot holds
	Need  int // prompt tokens + max_tokens
}

func (e *ContextFullError) Error() string {
	return fmt.Sprintf("context full: prompt and max_tokens need %d tokens, the context holds %d", e.Need, e.Limit)
}

// Is makes errors.Is(err, ErrContextFull) true.
func (e *ContextFullError) Is(target error) bool { return target == ErrContextFull }

// DecodeError is a failure status of llama_decode.
type DecodeError struct{ Status int }

func (e *DecodeError) Error() string {
	switch e.Status {
	case 1:
		return "llama_decode: no room in the KV cache"
	case C.KW_BAD_TOKEN:
		return "llama_decode: token id outside the vocabulary"
	case -2:
		return "llama_decode: out of memory"
	}
	return fmt.Sprintf("llama_decode failed with status %d", e.Status)
}

// Generate evaluates prompt and samples a reply, calling emit with each
// piece of text as it becomes final: UTF-8 sequences are never split and a
// tail that may start a stop sequence is held back. The piece's buffer is
// reused and wiped after emit returns, so emit must copy what it keeps; an
// error from emit ends the generation and is returned.
//
// It reuses the longest common prefix of the tokens the slot's KV cache
// holds and prompt, evaluating only the rest, and leaves the reply's tokens
// in the cache so a next turn that extends it evaluates only its new
// tokens. It stops at an end-of-generation token or a stop sequence
// ("stop"), at MaxTokens or a full context ("length"), or when ctx ends or
// the slot is wiped ("cancelled", within one token, with ctx.Err() or
// ErrWiped). A prompt that cannot fit with MaxTokens is a
// *ContextFullError before anything is evaluated.
func (s *Slot) Generate(ctx context.Context, prompt []int32, p Sampling, emit func(piece []byte) error) (Result, error) {
	// One OS thread for the whole generation: llama.cpp's per-token host
	// work, which the device waits on, then finds its data in that core's
	// caches instead of following the goroutine to another core after each
	// piece is streamed.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	r := Result{PromptTokens: len(prompt)}
	nctx := cap(s.cached)
	if len(prompt) == 0 {
		return r, ErrEmptyPrompt
	}
	if need := len(prompt) + max(p.MaxTokens, 1); need > nctx {
		return r, &ContextFullError{Limit: nctx, Need: need}
	}
	if err := ctx.Err(); err != nil {
		r.FinishReason = "cancelled"
		return r, err
	}
	C.kw_abort_clear(s.c, C.KW_ABORT_CANCEL)
	// The abort flag also stops a llama_decode in progress (a long prompt).
	// If the callback has started, wait for it: a late one would abort the
	// slot's next generation, or touch a slot already freed.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		C.kw_abort_set(s.c, C.KW_ABORT_CANCEL)
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
		}
	}()
	defer C.kw_slot_scrub(s.c)

	if C.kw_sampler(s.c, C.float(p.Temperature), C.float(p.TopP), C.uint32_t(seed32(p.Seed))) != 0 {
		return r, errors.New("llama.cpp: create sampler")
	}

	n := s.reuse(prompt)
	r.CachedTokens, r.EvaluatedTokens = n, len(prompt)-n
	batch := int(C.kw_slot_n_batch(s.c))
	for off := n; off < len(prompt); off += batch {
		if ctx.Err() != nil {
			C.kw_abort_set(s.c, C.KW_ABORT_CANCEL)
		}
		end := min(off+batch, len(prompt))
		rc := C.kw_eval(s.c, (*C.int32_t)(unsafe.Pointer(&prompt[off])), C.int32_t(end-off), C.int32_t(off))
		if rc != C.KW_OK {
			return s.failed(ctx, &r, rc, start)
		}
		s.cached = append(s.cached, prompt[off:end]...)
	}

	var (
		tok, feed C.int32_t
		feedPos   = C.int32_t(-1) // the first token is sampled from the prompt's logits
		eog, fed  C.bool
		np        C.int32_t
		tm        [C.KW_T_N]C.double
	)
	s.hold = s.hold[:0]
	finish := "stop"
	for {
		if cap(s.hold)-len(s.hold) < 64 {
			s.hold = growWiped(s.hold, len(s.hold)+256)
		}
		if ctx.Err() != nil { // AfterFunc's flag may lag: check here too
			C.kw_abort_set(s.c, C.KW_ABORT_CANCEL)
		}
		// The token this step samples is not the last unless max_tokens
		// is reached or no position is left for it. With a GPU it is
		// queued for decoding at once (see kw_next); on the CPU the next
		// step feeds it. The first token is fed by the next step on a GPU
		// too: its decode follows a prompt's batch, so llama.cpp rebuilds
		// its graph and the CUDA backend captures a new one (milliseconds
		// of host work), which would otherwise delay the first piece.
		more := p.MaxTokens <= 0 || r.CompletionTokens+1 < p.MaxTokens
		launch := C.int32_t(-1)
		next := len(s.cached) // the position of the token this step samples
		if feedPos >= 0 {
			next++
		}
		if s.e.pipelined && more && next < nctx && r.CompletionTokens > 0 {
			launch = C.int32_t(next)
		}
		free := s.hold[len(s.hold):cap(s.hold)]
		rc := C.kw_next(s.c, feed, feedPos, launch, &tok, &eog, &fed,
			(*C.char)(unsafe.Pointer(&free[0])), C.int32_t(len(free)), &np, &tm[0])
		r.DecodeTime, r.WaitTime, r.SampleTime = seconds(tm[C.KW_T_DECODE]), seconds(tm[C.KW_T_WAIT]), seconds(tm[C.KW_T_SAMPLE])
		if rc != C.KW_OK {
			return s.failed(ctx, &r, rc, start)
		}
		if feedPos >= 0 {
			s.cached = append(s.cached, int32(feed))
			feedPos = -1
		}
		if fed {
			s.cached = append(s.cached, int32(tok))
		}
		if r.CompletionTokens == 0 && r.TimeToFirstToken == 0 {
			r.TimeToFirstToken = time.Since(start)
		}
		if eog {
			break
		}
		if np < 0 { // a piece longer than the room left: grow and ask again
			s.hold = growWiped(s.hold, len(s.hold)+int(-np))
			free = s.hold[len(s.hold):cap(s.hold)]
			np = C.kw_piece(s.c, tok, (*C.char)(unsafe.Pointer(&free[0])), C.int32_t(len(free)))
			if np < 0 {
				return s.failed(ctx, &r, -1, start)
			}
		}
		s.hold = s.hold[:len(s.hold)+int(np)]
		r.CompletionTokens++

		k, stopped := releasable(s.hold, p.Stop)
		if k > 0 {
			if err := emit(s.hold[:k]); err != nil {
				s.dropHold()
				r.FinishReason, r.Duration = "cancelled", time.Since(start)
				return r, err
			}
		}
		if stopped {
			s.dropHold()
			break
		}
		rest := copy(s.hold, s.hold[k:])
		clear(s.hold[rest:])
		s.hold = s.hold[:rest]

		if fed {
			continue
		}
		if !more || len(s.cached) >= nctx {
			finish = "length"
			break
		}
		feed, feedPos = tok, C.int32_t(len(s.cached))
	}
	r.FinishReason = finish
	if err := s.flush(emit); err != nil {
		r.FinishReason = "cancelled"
		r.Duration = time.Since(start)
		return r, err
	}
	r.Duration = time.Since(start)
	return r, nil
}

// reuse keeps the longest common prefix of the cached tokens and prompt in
// the KV cache (at most all but the prompt's last token, whose logits are
// needed) and drops the rest; it returns the number of tokens kept.
func (s *Slot) reuse(prompt []int32) int {
	n := 0
	for n < len(s.cached) && n < len(prompt) && s.cached[n] == prompt[n] {
		n++
	}
	if n == len(prompt) {
		n--
	}
	if n < len(s.cached) {
		if !C.kw_slot_trim(s.c, C.int32_t(n)) {
			// This memory cannot drop a tail (recurrent models): start over.
			s.wipeLocal()
			return 0
		}
		clear(s.cached[n:])
		s.cached = s.cached[:n]
	}
	return n
}

// failed turns a status of kw_eval/kw_next into the result and error, and
// drops from the KV cache whatever the failed step may have left.
func (s *Slot) failed(ctx context.Context, r *Result, rc C.int32_t, start time.Time) (Result, error) {
	C.kw_slot_trim(s.c, C.int32_t(len(s.cached)))
	s.dropHold()
	r.Duration = time.Since(start)
	if rc == C.KW_ABORTED {
		r.FinishReason = "cancelled"
		if C.kw_abort_get(s.c)&C.KW_ABORT_WIPE != 0 {
			return *r, ErrWiped
		}
		if err := ctx.Err(); err != nil {
			return *r, err
		}
		return *r, context.Canceled
	}
	return *r, &DecodeError{Status: int(rc)}
}

// flush emits what is still held back (a tail that did not become a stop
// sequence) and wipes it.
func (s *Slot) flush(emit func([]byte) error) error {
	if len(s.hold) == 0 {
		return nil
	}
	err := emit(s.hold)
	s.dropHold()
	return err
}

func (s *Slot) dropHold() {
	clear(s.hold[:cap(s.hold)])
	s.hold = s.hold[:0]
}

// growWiped returns a buffer of capacity ≥ n holding b's bytes, wiping b if
// it had to move.
func growWiped(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	nb := make([]byte, len(b), max(n, 2*cap(b)))
	copy(nb, b)
	clear(b[:cap(b)])
	return nb
}

func seconds(v C.double) time.Duration { return time.Duration(float64(v) * 1e9) }

// seed32 folds a 64-bit seed into llama.cpp's 32 bits, avoiding its
// "random seed" value so every seed is reproducible.
func seed32(seed uint64) uint32 {
	v := uint32(seed) ^ uint32(seed>>32)
	if v == 0xFFFFFFFF { // LLAMA_DEFAULT_SEED
		v = 0xFFFFFFFE
	}
	return v
}
