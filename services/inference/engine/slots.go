package engine

/*
#include "kwyre_llama.h"
*/
import "C"

import (
	"context"
	"fmt"
)

// Slot is one sequence of the engine: its own llama_context, the tokens its
// KV cache holds, and the buffers a generation works in. One request holds
// it at a time, between Acquire and Release.
type Slot struct {
	e *Engine
	c *C.kw_slot

	// Guarded by e.mu.
	owner   string // whose KV the slot holds; "" = nobody's (wiped)
	busy    bool
	wipeReq bool // wipe on Release (WipeOwner/WipeAll while busy)
	used    uint64

	// Owned by the holder.
	cached []int32 // tokens whose KV the context holds, cap = n_ctx, never grown
	hold   []byte  // text generated but not yet emitted
}

type waiter struct {
	owner string
	ch    chan *Slot // gets the slot, or is closed when the engine closes
}

func newSlot(e *Engine, nctx, batch, threads int, fa C.int32_t, kvProbe bool) (*Slot, error) {
	c := C.kw_slot_new(e.model, C.uint32_t(nctx), C.uint32_t(batch), C.int32_t(threads), fa, C.bool(kvProbe))
	if c == nil {
		return nil, ErrNoMemory
	}
	n := int(C.kw_slot_n_ctx(c))
	return &Slot{e: e, c: c, cached: make([]int32, 0, n), hold: make([]byte, 0, 1024)}, nil
}

func (s *Slot) free(keepCtx bool) {
	if s.c == nil {
		return
	}
	s.wipeLocal()
	C.kw_slot_free(s.c, C.bool(keepCtx))
	s.c = nil
}

// Acquire waits, first come first served, for a free slot for owner. It
// prefers the slot that already holds owner's KV cache, then a wiped one,
// then the one idle longest; a slot taken over from another owner is wiped
// first. Owner "" is stateless: the slot is wiped on Release.
func (e *Engine) Acquire(ctx context.Context, owner string) (*Slot, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if len(e.waiters) == 0 {
		if s := e.pickLocked(owner); s != nil {
			e.takeLocked(s, owner)
			e.mu.Unlock()
			return s, nil
		}
	}
	w := &waiter{owner: owner, ch: make(chan *Slot, 1)}
	e.waiters = append(e.waiters, w)
	e.mu.Unlock()

	select {
	case s, ok := <-w.ch:
		if !ok {
			return nil, ErrClosed
		}
		return s, nil
	case <-ctx.Done():
		e.mu.Lock()
		for i, x := range e.waiters {
			if x == w {
				e.waiters = append(e.waiters[:i], e.waiters[i+1:]...)
				break
			}
		}
		e.mu.Unlock()
		// The slot may have been handed over just before we left the queue.
		select {
		case s, ok := <-w.ch:
			if ok {
				s.Release()
			}
		default:
		}
		return nil, fmt.Errorf("wait for a slot: %w", ctx.Err())
	}
}

// pickLocked chooses a free slot for owner, or nil.
func (e *Engine) pickLocked(owner string) *Slot {
	var clean, lru *Slot
	for _, s := range e.slots {
		if s.busy {
			continue
		}
		if owner != "" && s.owner == owner {
			return s
		}
		if s.owner == "" && clean == nil {
			clean = s
		}
		if lru == nil || s.used < lru.used {
			lru = s
		}
	}
	if clean != nil {
		return clean
	}
	return lru
}

// takeLocked gives s to owner: a slot holding another owner's KV is wiped
// first (under the lock, so a concurrent WipeAll cannot slip between), and
// aborts left from an earlier holder are cleared.
func (e *Engine) takeLocked(s *Slot, owner string) {
	s.busy = true
	e.tick++
	s.used = e.tick
	if s.owner != owner && s.owner != "" {
		s.wipeLocal()
	}
	s.owner = owner
	s.wipeReq = false
	C.kw_abort_clear(s.c, C.KW_ABORT_WIPE|C.KW_ABORT_CANCEL)
}

// Release hands the slot back. Its KV cache stays for its owner unless the
// owner is "" or a wipe was asked for while it ran.
func (s *Slot) Release() {
	e := s.e
	e.mu.Lock()
	wipe := s.wipeReq || s.owner == ""
	e.mu.Unlock()
	if wipe {
		s.wipeLocal()
	}
	e.mu.Lock()
	if wipe {
		s.owner = ""
		s.wipeReq = false
	}
	if len(e.waiters) > 0 && !e.closed {
		w := e.waiters[0]
		e.waiters = e.waiters[1:]
		e.takeLocked(s, w.owner)
		w.ch <- s
	} else {
		s.busy = false
	}
	e.cond.Broadcast()
	e.mu.Unlock()
}

// Wipe clears the slot's KV cells and zeroes their data, and forgets the
// cached tokens. Only the holder calls it.
func (s *Slot) Wipe() { s.wipeLocal() }

func (s *Slot) wipeLocal() {
	if s.c == nil { // freed by Close
		return
	}
	C.kw_slot_wipe(s.c)
	clear(s.cached[:cap(s.cached)])
	s.cached = s.cached[:0]
	clear(s.hold[:cap(s.hold)])
	s.hold = s.hold[:0]
}

// WipeOwner wipes the slot holding owner's KV cache, if any. A slot in use
// has its generation stopped and is wiped on Release; WipeOwner waits for
// that.
func (e *Engine) WipeOwner(owner string) {
	if owner == "" {
		return
	}
	e.wipe(func(s *Slot) bool { return s.owner == owner })
}

// WipeAll wipes every slot, stopping the generations in flight.
func (e *Engine) WipeAll() { e.wipe(func(*Slot) bool { return true }) }

func (e *Engine) wipe(match func(*Slot) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed { // Close wipes and frees every slot itself
		return
	}
	var waitFor []*Slot
	for _, s := range e.slots {
		if !match(s) {
			continue
		}
		if s.busy {
			s.wipeReq = true
			C.kw_abort_set(s.c, C.KW_ABORT_WIPE)
			waitFor = append(waitFor, s)
			continue
		}
		// Idle: wipe it here, holding the lock so nobody takes it meanwhile.
		s.wipeLocal()
		s.owner = ""
	}
	// Wait until each busy one has been released (and so wiped) or
	// handed on, which also wipes it before its next use.
	for _, s := range waitFor {
		for s.busy && s.wipeReq {
			e.cond.Wait()
		}
	}
}

// KVCells is the number of token positions the slot's KV cache holds
// (metadata for tests and /audit).
func (s *Slot) KVCells() int { return int(C.kw_slot_cells(s.c)) }

// KVStateBytes is the size of the slot's sequence state as llama.cpp would
// serialise it: a fixed header when wiped, growing with every cell held.
func (s *Slot) KVStateBytes() int { return int(C.kw_slot_state_size(s.c)) }

// CachedTokens is the number of tokens whose KV the slot holds for reuse.
func (s *Slot) CachedTokens() int { return len(s.cached) }
