package engine

import "context"

// Complete is one chat turn end to end: it waits for a slot for owner,
// renders msgs with the chat template, tokenizes, generates and releases
// the slot, wiping its own buffers. Benchmarks and tools use it; the HTTP
// service drives the steps itself.
func (e *Engine) Complete(ctx context.Context, owner string, msgs []Message, p Sampling, emit func([]byte) error) (Result, error) {
	text, err := e.RenderChat(msgs, true, nil)
	defer func() { clear(text[:cap(text)]) }()
	if err != nil {
		return Result{}, err
	}
	toks, err := e.Tokenize(text, nil)
	defer func() { clear(toks[:cap(toks)]) }()
	if err != nil {
		return Result{}, err
	}
	s, err := e.Acquire(ctx, owner)
	if err != nil {
		return Result{}, err
	}
	defer s.Release()
	return s.Generate(ctx, toks, p, emit)
}
