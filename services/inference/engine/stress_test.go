package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStress runs many sessions over few slots while wipes of one owner and
// of everything arrive at random. Nothing may deadlock, and a slot handed to
// an owner may only hold that owner's tokens.
func TestStress(t *testing.T) {
	e := load(t, "tiny", Config{Slots: 2, ContextSize: 256})
	owners := []string{"", "a", "b", "c", "d"}
	prompts := map[string][]int32{}
	for _, o := range owners {
		prompts[o] = chat(t, e, "conversation of "+o+" "+o+o+o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var turns atomic.Int64
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for ctx.Err() == nil {
				o := owners[rng.IntN(len(owners))]
				s, err := e.Acquire(ctx, o)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("acquire: %v", err)
					}
					return
				}
				// A stateless request gets a clean slot; an owner's slot holds
				// nothing or that owner's prompt (and reply).
				n := s.CachedTokens()
				m := min(n, len(prompts[o]))
				if n > 0 && (o == "" || !slices.Equal(s.cached[:m], prompts[o][:m])) {
					t.Errorf("owner %q got a slot holding %d tokens of another conversation", o, n)
				}
				if s.KVCells() != s.CachedTokens() {
					t.Errorf("slot holds %d cells but %d cached tokens", s.KVCells(), s.CachedTokens())
				}
				_, err = s.Generate(ctx, prompts[o], Sampling{MaxTokens: 1 + rng.IntN(8), Temperature: 1, Seed: 1}, func([]byte) error { return nil })
				if err != nil && !errors.Is(err, ErrWiped) && ctx.Err() == nil {
					t.Errorf("generate: %v", err)
				}
				s.Release()
				turns.Add(1)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(99, 1))
		for ctx.Err() == nil {
			time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
			if rng.IntN(4) == 0 {
				e.WipeAll()
			} else {
				e.WipeOwner(owners[1+rng.IntN(len(owners)-1)])
			}
		}
	}()
	wg.Wait()
	if turns.Load() < 20 {
		t.Errorf("only %d turns in the stress run", turns.Load())
	}
	t.Logf("%d turns", turns.Load())
}
