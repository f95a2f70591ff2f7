package engine

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestWipeZeroesKVData reads the KV cache back: full of data after a
// generation, all zero after a wipe (on the GPU machine qa/gpu runs the
// same check against device memory through enginebench -kv-check).
func TestWipeZeroesKVData(t *testing.T) {
	e := load(t, "demo", Config{Slots: 1, ContextSize: 256, KVProbe: true})
	s := acquire(t, e, "alice")
	defer s.Release()
	if _, _, err := s.KVNonZero(); err == nil {
		t.Fatal("KVNonZero before any evaluation: want an error, got none")
	}
	if _, _, err := gen(t, context.Background(), s, chat(t, e, "hello"), Sampling{MaxTokens: 8}); err != nil {
		t.Fatal(err)
	}
	nz, total, err := s.KVNonZero()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after a generation: %d of %d KV bytes non-zero", nz, total)
	if nz == 0 || total == 0 {
		t.Fatalf("after a generation: %d of %d KV bytes non-zero; want some", nz, total)
	}
	s.Wipe()
	nz, total, err = s.KVNonZero()
	if err != nil {
		t.Fatal(err)
	}
	if nz != 0 {
		t.Fatalf("after a wipe: %d of %d KV bytes non-zero; want 0", nz, total)
	}
}

func TestProfileDecode(t *testing.T) {
	e := load(t, "demo", Config{Slots: 1, ContextSize: 256})
	s := acquire(t, e, "")
	defer s.Release()
	p, err := s.ProfileDecode(1, 16, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.Tokens != 16 || p.Decode <= 0 {
		t.Fatalf("profile %+v: want 16 tokens and time in llama_decode", p)
	}
	if s.CachedTokens() != 0 || s.KVCells() != 0 {
		t.Fatalf("after ProfileDecode the slot holds %d tokens, %d cells; want it wiped", s.CachedTokens(), s.KVCells())
	}
	if _, err := s.ProfileDecode(1, 1000, false); err == nil {
		t.Fatal("ProfileDecode past the context: want an error")
	}
}

// The benchmark steps enginebench -steps runs: decode asking for no
// logits, and a prompt evaluated on its own; both leave the slot wiped.
func TestBenchSteps(t *testing.T) {
	e := load(t, "demo", Config{Slots: 1, ContextSize: 256, BatchSize: 32})
	s := acquire(t, e, "")
	defer s.Release()
	p, err := s.ProfileDecodeNoLogits(1, 8)
	if err != nil || p.Tokens != 8 || p.Decode <= 0 {
		t.Fatalf("ProfileDecodeNoLogits: %+v, %v", p, err)
	}
	if _, err := s.ProfileDecodeNoLogits(1<<30, 1); err == nil {
		t.Error("ProfileDecodeNoLogits of a token outside the vocabulary: want an error")
	}
	toks := make([]int32, 32)
	for i := range toks {
		toks[i] = int32(i + 1)
	}
	if err := s.EvalPrompt(toks); err != nil {
		t.Fatal(err)
	}
	if s.CachedTokens() != 0 || s.KVCells() != 0 {
		t.Fatalf("after EvalPrompt the slot holds %d tokens, %d cells; want it wiped", s.CachedTokens(), s.KVCells())
	}
	for _, bad := range [][]int32{nil, make([]int32, 33)} {
		if err := s.EvalPrompt(bad); err == nil {
			t.Errorf("EvalPrompt of %d tokens with a batch of 32: want an error", len(bad))
		}
	}
	// PromptLogits: the same prompt gives the same logits, not all zero, and
	// leaves the slot wiped.
	var got [2][]float32
	for i := range got {
		got[i] = make([]float32, e.Info().NVocab)
		if err := s.PromptLogits(toks, got[i]); err != nil {
			t.Fatal(err)
		}
	}
	if s.CachedTokens() != 0 || s.KVCells() != 0 {
		t.Fatalf("after PromptLogits the slot holds %d tokens, %d cells; want it wiped", s.CachedTokens(), s.KVCells())
	}
	if !slices.Equal(got[0], got[1]) || slices.Max(got[0]) == slices.Min(got[0]) {
		t.Errorf("PromptLogits: two runs differ or are flat (max %g, min %g)", slices.Max(got[0]), slices.Min(got[0]))
	}
	if err := s.PromptLogits(toks, make([]float32, 3)); err == nil {
		t.Error("PromptLogits into 3 floats: want an error")
	}
}

func TestFlashAttentionSetting(t *testing.T) {
	for _, v := range []string{"", "auto", "on", "off"} {
		e := load(t, "demo", Config{Slots: 1, ContextSize: 256, FlashAttention: v})
		s := acquire(t, e, "")
		got, _, err := gen(t, context.Background(), s, chat(t, e, "hello"), Sampling{MaxTokens: 4})
		s.Release()
		if err != nil || got == "" {
			t.Errorf("flash attention %q: reply %q, %v", v, got, err)
		}
	}
	if _, err := Load(Config{ModelPath: modelFile(t, "demo"), FlashAttention: "fast"}, nil); err == nil {
		t.Error("flash attention \"fast\": want an error")
	}
}

func TestArgmax(t *testing.T) {
	naive := func(x []float32) int {
		b := 0
		for i := range x {
			if x[i] > x[b] || x[b] != x[b] && x[i] == x[i] {
				b = i
			}
		}
		return b
	}
	rng := rand.New(rand.NewPCG(1, 2))
	nan := float32(math.NaN())
	for _, n := range []int{1, 15, 16, 2047, 2048, 2049, 4096, 128256, 151936} {
		x := make([]float32, n)
		for trial := 0; trial < 20; trial++ {
			for i := range x {
				x[i] = rng.Float32()*20 - 10
			}
			switch trial % 5 {
			case 1: // a tie: the first wins
				p := rng.IntN(n)
				x[p] = 50
				x[rng.IntN(n)] = 50
			case 2: // the last element
				x[n-1] = 60
			case 3: // NaNs are never picked
				for i := 0; i < n; i += 7 {
					x[i] = nan
				}
			case 4: // all equal
				for i := range x {
					x[i] = -3
				}
			}
			if got, want := argmax(x), naive(x); got != want {
				t.Fatalf("n=%d trial %d: argmax %d, want %d", n, trial, got, want)
			}
		}
	}
	if got := argmax([]float32{nan, nan, nan}); got != 0 {
		t.Errorf("all NaN: %d, want 0", got)
	}
}

// TestPipelinedStepsMatch runs the GPU way of stepping (the next token's
// decode queued before the piece is streamed) on the CPU, where it is
// correct but gains nothing, against the CPU way: same text, same counts,
// same KV cells, for a reply that ends by itself and one cut by max_tokens.
func TestPipelinedStepsMatch(t *testing.T) {
	e := load(t, "tiny", Config{Slots: 1, ContextSize: 512})
	prompt := chat(t, e, "tell me something")
	for _, max := range []int{0, 7} {
		type out struct {
			text  string
			r     Result
			cells int
		}
		var got [2]out
		for i, pipelined := range []bool{false, true} {
			e.pipelined = pipelined
			s := acquire(t, e, "")
			text, r, err := gen(t, context.Background(), s, prompt, Sampling{MaxTokens: max})
			if err != nil {
				t.Fatal(err)
			}
			r.TimeToFirstToken, r.Duration = 0, 0
			r.DecodeTime, r.WaitTime, r.SampleTime = 0, 0, 0
			got[i] = out{text, r, s.KVCells()}
			s.Release()
		}
		if got[0] != got[1] {
			t.Errorf("max_tokens %d: fed %+v, queued %+v", max, got[0], got[1])
		}
		if got[0].cells != got[0].r.PromptTokens+got[0].r.CompletionTokens-1 && got[0].r.FinishReason == "length" {
			t.Errorf("max_tokens %d: %d cells for %+v", max, got[0].cells, got[0].r)
		}
	}
}

// With a GPU's pipelining (the next token queued before a piece is
// emitted), an emit error still ends the generation with that error, and
// the pieces before it arrive in order.
func TestPipelinedEmitError(t *testing.T) {
	e := load(t, "demo", Config{Slots: 1, ContextSize: 512})
	e.pipelined = true
	prompt := chat(t, e, "hello")
	s := acquire(t, e, "")
	want, _, err := gen(t, context.Background(), s, prompt, Sampling{MaxTokens: 48})
	s.Release()
	if err != nil || len(want) < 8 {
		t.Fatalf("reference: %q, %v", want, err)
	}
	boom := errors.New("client went away")
	var mu sync.Mutex
	var got []byte
	calls, returned := 0, false
	s = acquire(t, e, "")
	_, err = s.Generate(context.Background(), prompt, Sampling{MaxTokens: 48}, func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if returned {
			t.Error("emit called after Generate returned")
		}
		calls++
		if calls > 3 {
			return boom
		}
		got = append(got, b...)
		return nil
	})
	mu.Lock()
	returned = true
	mu.Unlock()
	s.Release()
	if !errors.Is(err, boom) {
		t.Fatalf("emit error: got %v", err)
	}
	if !strings.HasPrefix(want, string(got)) || len(got) == 0 {
		t.Errorf("pieces before the error: %q, not a prefix of %q", got, want)
	}
}
