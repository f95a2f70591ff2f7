package api

import (
	"context"
	"errors"
	"time"
)

// Message is one chat message handed to the engine. Content is plaintext in
// a buffer the caller wipes.
type Message struct {
	Role    string
	Content []byte
}

// Sampling holds a request's sampling parameters.
type Sampling struct {
	Temperature float32
	TopP        float32
	Seed        uint64
	MaxTokens   int
	Stop        [][]byte
}

// Result describes one generation: PromptTokens = CachedTokens (reused from
// the slot's KV cache) + EvaluatedTokens (computed now).
type Result struct {
	PromptTokens     int
	CachedTokens     int
	EvaluatedTokens  int
	CompletionTokens int
	FinishReason     string
	TimeToFirstToken time.Duration
	Duration         time.Duration
	// The token loop's time in llama_decode, waiting for the device and
	// sampling (zero where an engine does not measure them).
	DecodeTime, WaitTime, SampleTime time.Duration
}

// ErrContextFull is what an Engine's Slot returns when the context window
// fills during generation.
var ErrContextFull = errors.New("context window is full")

// ErrWiped is what a Slot returns when a wipe (session end, idle timeout,
// wipe-all) stopped its generation. The wipe may reach the engine before it
// cancels the request's context, so both say "wiped".
var ErrWiped = errors.New("slot wiped during generation")

// Engine is what the HTTP layer needs of the model runtime. The service
// wires llama.cpp (package engine) behind it; the HTTP layer's own unit tests
// use a minimal one that never reaches a model.
type Engine interface {
	// RenderChat applies the model's chat template, appending to dst.
	RenderChat(msgs []Message, addAssistant bool, dst []byte) ([]byte, error)
	// Tokenize appends the tokens of text to dst.
	Tokenize(text []byte, dst []int32) ([]int32, error)
	// Acquire waits (first come, first served) for a slot and gives it to
	// owner, preferring the slot that already holds owner's KV cache. Owner
	// "" is a stateless request: its slot is wiped on Release.
	Acquire(ctx context.Context, owner string) (Slot, error)
	// WipeOwner clears and zeroes the KV cells held for owner.
	WipeOwner(owner string)
	// WipeAll clears and zeroes every slot's KV cells.
	WipeAll()
	// ContextSize is the number of tokens one slot holds.
	ContextSize() int
}

// Slot is one sequence of the engine, held by one request at a time.
type Slot interface {
	Generate(ctx context.Context, prompt []int32, s Sampling, emit func(piece []byte) error) (Result, error)
	// Release hands the slot back, keeping its KV cache for its owner.
	Release()
	// Wipe clears and zeroes the slot's KV cells.
	Wipe()
}
