package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/kwyre/kwyre/services/inference/api"
	"github.com/kwyre/kwyre/services/inference/engine"
)

// llama puts package engine (llama.cpp) behind api.Engine.
type llama struct {
	e   *engine.Engine
	ctx int
}

func (l llama) RenderChat(msgs []api.Message, addAssistant bool, dst []byte) ([]byte, error) {
	em := make([]engine.Message, len(msgs))
	defer clear(em)
	for i, m := range msgs {
		em[i] = engine.Message{Role: m.Role, Content: m.Content}
	}
	return l.e.RenderChat(em, addAssistant, dst)
}

func (l llama) Tokenize(text []byte, dst []int32) ([]int32, error) { return l.e.Tokenize(text, dst) }

func (l llama) Acquire(ctx context.Context, owner string) (api.Slot, error) {
	s, err := l.e.Acquire(ctx, owner)
	if err != nil {
		return nil, err
	}
	return llamaSlot{s}, nil
}

func (l llama) WipeOwner(owner string) { l.e.WipeOwner(owner) }
func (l llama) WipeAll()               { l.e.WipeAll() }
func (l llama) ContextSize() int       { return l.ctx }

type llamaSlot struct{ s *engine.Slot }

func (s llamaSlot) Generate(ctx context.Context, prompt []int32, p api.Sampling, emit func([]byte) error) (api.Result, error) {
	r, err := s.s.Generate(ctx, prompt, engine.Sampling{
		Temperature: p.Temperature, TopP: p.TopP, Seed: p.Seed, MaxTokens: p.MaxTokens, Stop: p.Stop,
	}, emit)
	res := api.Result{
		PromptTokens: r.PromptTokens, CachedTokens: r.CachedTokens, EvaluatedTokens: r.EvaluatedTokens,
		CompletionTokens: r.CompletionTokens, FinishReason: r.FinishReason,
		TimeToFirstToken: r.TimeToFirstToken, Duration: r.Duration,
		DecodeTime: r.DecodeTime, WaitTime: r.WaitTime, SampleTime: r.SampleTime,
	}
	switch {
	case errors.Is(err, engine.ErrContextFull):
		err = fmt.Errorf("%w: %w", api.ErrContextFull, err)
	case errors.Is(err, engine.ErrWiped):
		err = fmt.Errorf("%w: %w", api.ErrWiped, err)
	}
	return res, err
}

func (s llamaSlot) Release() { s.s.Release() }
func (s llamaSlot) Wipe()    { s.s.Wipe() }
