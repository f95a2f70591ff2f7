package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kwyre/kwyre/tools/testmodel"
)

func TestDemoReply(t *testing.T) {
	e := load(t, "demo", Config{Slots: 1, ContextSize: 512})
	info := e.Info()
	if info.Arch != "llama" || info.NCtx != 512 || info.NSlots != 1 || info.Backend != "CPU" ||
		info.ChatTemplate != "model" || info.NVocab <= 0 || info.NLayer != 2 || info.ModelBytes <= 0 {
		t.Errorf("info = %+v", info)
	}
	for _, prompt := range []string{"Hello", "What is the capital of France?", "ünïcödé ✓"} {
		s := acquire(t, e, "")
		got, r, err := gen(t, context.Background(), s, chat(t, e, prompt), Sampling{MaxTokens: 64})
		s.Release()
		if err != nil {
			t.Fatalf("generate: %v", err)
		}
		if got != testmodel.DemoReply {
			t.Errorf("reply to %q = %q, want %q", prompt, got, testmodel.DemoReply)
		}
		if r.FinishReason != "stop" || r.CompletionTokens == 0 || r.CachedTokens != 0 ||
			r.EvaluatedTokens != r.PromptTokens || r.TimeToFirstToken <= 0 || r.Duration < r.TimeToFirstToken {
			t.Errorf("result = %+v", r)
		}
	}
}

func TestFollowUpEvaluatesOnlyNewTokens(t *testing.T) {
	e := load(t, "demo", Config{Slots: 2, ContextSize: 1024})
	s := acquire(t, e, "alice")
	p1 := chat(t, e, "first question")
	reply, r1, err := gen(t, context.Background(), s, p1, Sampling{MaxTokens: 64})
	s.Release()
	if err != nil || r1.CachedTokens != 0 {
		t.Fatalf("turn 1: %+v, %v", r1, err)
	}
	// Someone else uses the other slot meanwhile.
	o := acquire(t, e, "bob")
	if _, _, err := gen(t, context.Background(), o, chat(t, e, "bob here"), Sampling{MaxTokens: 8}); err != nil {
		t.Fatal(err)
	}
	o.Release()

	// A next turn that extends the tokens the slot holds evaluates only the
	// new ones.
	s = acquire(t, e, "alice")
	defer s.Release()
	held := s.CachedTokens()
	if r1.FinishReason != "stop" || held != len(p1)+r1.CompletionTokens { // every reply token fed back; the EOG not
		t.Fatalf("slot holds %d tokens after a %d-token prompt and %d-token reply", held, len(p1), r1.CompletionTokens)
	}
	tail, err := e.Tokenize([]byte("<|im_end|>\n<|im_start|>user\nsecond question<|im_end|>\n<|im_start|>assistant\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p2 := append(append([]int32{}, s.cached[:held]...), tail...)
	_, r2, err := gen(t, context.Background(), s, p2, Sampling{MaxTokens: 64})
	if err != nil {
		t.Fatal(err)
	}
	if r2.CachedTokens != held || r2.EvaluatedTokens != len(tail) {
		t.Errorf("turn 2 of %d tokens: cached %d (want %d), evaluated %d (want %d)",
			len(p2), r2.CachedTokens, held, r2.EvaluatedTokens, len(tail))
	}

	// Through the chat template the reply is tokenized again; the prompt of
	// turn 1 is reused at least (all of it when the tokenizer gives back the
	// tokens the model generated).
	p3 := chat(t, e, "first question", reply, "second question")
	_, r3, err := gen(t, context.Background(), s, p3, Sampling{MaxTokens: 64})
	if err != nil {
		t.Fatal(err)
	}
	if r3.CachedTokens < len(p1) || r3.EvaluatedTokens != len(p3)-r3.CachedTokens {
		t.Errorf("rendered turn 2 of %d tokens: cached %d, evaluated %d, turn 1 prompt %d",
			len(p3), r3.CachedTokens, r3.EvaluatedTokens, len(p1))
	}
}

func TestContextFull(t *testing.T) {
	e := load(t, "tiny", Config{Slots: 1, ContextSize: 64})
	nctx := e.Info().NCtx // llama.cpp pads the context to a multiple of 256
	if nctx < 64 {
		t.Fatalf("context of %d tokens, asked for 64", nctx)
	}
	s := acquire(t, e, "")
	defer s.Release()
	long := chat(t, e, strings.Repeat("word, ", nctx))
	short := chat(t, e, "hi")
	for _, c := range []struct {
		name   string
		prompt []int32
		max    int
	}{
		{"prompt alone", long, 0},
		{"prompt and max_tokens", short, nctx},
	} {
		_, r, err := gen(t, context.Background(), s, c.prompt, Sampling{MaxTokens: c.max})
		var cf *ContextFullError
		if !errors.Is(err, ErrContextFull) || !errors.As(err, &cf) {
			t.Fatalf("%s: err = %v, want ErrContextFull", c.name, err)
		}
		if cf.Limit != nctx || cf.Need != len(c.prompt)+max(c.max, 1) || r.CompletionTokens != 0 || r.EvaluatedTokens != 0 {
			t.Errorf("%s: %+v, result %+v", c.name, cf, r)
		}
	}
	// Without max_tokens, generation runs until the context is full.
	_, r, err := gen(t, context.Background(), s, short, Sampling{Temperature: 1, Seed: 3, Stop: nil})
	if err != nil {
		t.Fatal(err)
	}
	if r.FinishReason == "length" && r.PromptTokens+r.CompletionTokens != nctx {
		t.Errorf("ran to length with %d+%d tokens, context %d", r.PromptTokens, r.CompletionTokens, nctx)
	}
	if s.CachedTokens() > nctx {
		t.Errorf("cached %d tokens in a %d-token context", s.CachedTokens(), nctx)
	}
}

func TestCancel(t *testing.T) {
	e := load(t, "tiny", Config{Slots: 1, ContextSize: 2048})
	s := acquire(t, e, "")
	defer s.Release()
	prompt := chat(t, e, "go on forever")

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	r, err := s.Generate(ctx, prompt, Sampling{Temperature: 1, Seed: 1}, func([]byte) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || r.FinishReason != "cancelled" {
		t.Fatalf("err %v, result %+v", err, r)
	}
	// Stopped within one token of the cancel: no piece after it. (Tokens and
	// pieces differ: a piece may wait for the rest of a UTF-8 sequence.)
	if n != 3 || r.CompletionTokens > 16 {
		t.Errorf("%d pieces, %d tokens after cancelling at the third piece", n, r.CompletionTokens)
	}
	if s.CachedTokens() != s.KVCells() {
		t.Errorf("cached %d tokens but the KV cache holds %d", s.CachedTokens(), s.KVCells())
	}

	// A context already done evaluates nothing.
	_, r, err = gen(t, ctx, s, prompt, Sampling{})
	if !errors.Is(err, context.Canceled) || r.EvaluatedTokens != 0 {
		t.Errorf("done context: %v, %+v", err, r)
	}

	// An emit error ends generation too.
	boom := errors.New("client went away")
	_, err = s.Generate(context.Background(), prompt, Sampling{Temperature: 1, Seed: 1}, func([]byte) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("emit error: got %v", err)
	}
}

func TestWipe(t *testing.T) {
	e := load(t, "demo", Config{Slots: 1, ContextSize: 512})
	s := acquire(t, e, "alice")
	defer s.Release()
	empty := s.KVStateBytes()
	if s.KVCells() != 0 {
		t.Fatalf("fresh slot holds %d cells", s.KVCells())
	}
	prompt := chat(t, e, "remember this")
	if _, _, err := gen(t, context.Background(), s, prompt, Sampling{MaxTokens: 64}); err != nil {
		t.Fatal(err)
	}
	if s.KVCells() == 0 || s.KVStateBytes() <= empty || s.CachedTokens() != s.KVCells() {
		t.Fatalf("after generating: %d cells, %d state bytes (empty %d), %d cached", s.KVCells(), s.KVStateBytes(), empty, s.CachedTokens())
	}
	s.Wipe()
	if s.KVCells() != 0 || s.KVStateBytes() != empty || s.CachedTokens() != 0 {
		t.Errorf("after wipe: %d cells, %d state bytes (empty %d), %d cached", s.KVCells(), s.KVStateBytes(), empty, s.CachedTokens())
	}
	_, r, err := gen(t, context.Background(), s, prompt, Sampling{MaxTokens: 64})
	if err != nil || r.CachedTokens != 0 || r.EvaluatedTokens != len(prompt) {
		t.Errorf("after wipe the prompt must be evaluated in full: %+v, %v", r, err)
	}
}

func TestOwnersNeverShareKV(t *testing.T) {
	e := load(t, "demo", Config{Slots: 1, ContextSize: 512})
	prompt := chat(t, e, "a secret")
	turn := func(owner string) Result {
		s := acquire(t, e, owner)
		defer s.Release()
		if owner != "alice" && s.KVCells() != 0 {
			t.Errorf("%s got a slot holding %d cells of another owner", owner, s.KVCells())
		}
		_, r, err := gen(t, context.Background(), s, prompt, Sampling{MaxTokens: 64})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	turn("alice")
	if r := turn("alice"); r.CachedTokens == 0 {
		t.Errorf("alice's own KV was not reused: %+v", r)
	}
	if r := turn("bob"); r.CachedTokens != 0 {
		t.Errorf("bob reused alice's KV: %+v", r)
	}
	if r := turn(""); r.CachedTokens != 0 {
		t.Errorf("a stateless request reused bob's KV: %+v", r)
	}
	// The stateless request's slot was wiped on release.
	s := acquire(t, e, "carol")
	if s.KVCells() != 0 {
		t.Errorf("slot after a stateless request holds %d cells", s.KVCells())
	}
	s.Release()
}

func TestWipeOwnerAndAll(t *testing.T) {
	e := load(t, "demo", Config{Slots: 2, ContextSize: 512})
	prompt := chat(t, e, "hello")
	for _, o := range []string{"alice", "bob"} {
		s := acquire(t, e, o)
		if _, _, err := gen(t, context.Background(), s, prompt, Sampling{MaxTokens: 64}); err != nil {
			t.Fatal(err)
		}
		s.Release()
	}
	cells := func(owner string) int {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range e.slots {
			if s.owner == owner {
				return s.KVCells()
			}
		}
		return -1
	}
	e.WipeOwner("alice")
	if cells("alice") != -1 || cells("bob") <= 0 {
		t.Errorf("after WipeOwner(alice): alice %d, bob %d cells", cells("alice"), cells("bob"))
	}
	e.WipeAll()
	for _, s := range e.slots {
		if s.KVCells() != 0 || s.owner != "" {
			t.Errorf("after WipeAll: slot of %q holds %d cells", s.owner, s.KVCells())
		}
	}
}

func TestWipeAllStopsGeneration(t *testing.T) {
	e := load(t, "tiny", Config{Slots: 1, ContextSize: 2048})
	s := acquire(t, e, "alice")
	started := make(chan struct{})
	done := make(chan error, 1)
	var r Result
	go func() {
		var once sync.Once
		var err error
		r, err = s.Generate(context.Background(), chat(t, e, "long"), Sampling{Temperature: 1, Seed: 2}, func([]byte) error {
			once.Do(func() { close(started) })
			return nil
		})
		s.Release()
		done <- err
	}()
	<-started
	e.WipeAll() // returns once the slot is released and wiped
	err := <-done
	if !errors.Is(err, ErrWiped) || r.FinishReason != "cancelled" {
		t.Fatalf("generation during WipeAll: %v, %+v", err, r)
	}
	if s.KVCells() != 0 || s.CachedTokens() != 0 {
		t.Errorf("slot after WipeAll: %d cells, %d cached", s.KVCells(), s.CachedTokens())
	}
	// The slot serves again.
	s = acquire(t, e, "alice")
	defer s.Release()
	if _, _, err := gen(t, context.Background(), s, chat(t, e, "again"), Sampling{MaxTokens: 4}); err != nil {
		t.Errorf("after WipeAll: %v", err)
	}
}

func TestParallelSlots(t *testing.T) {
	e := load(t, "tiny", Config{Slots: 2, ContextSize: 256, Threads: 1})
	prompts := [][]int32{chat(t, e, "first conversation"), chat(t, e, "second, different conversation")}
	p := Sampling{MaxTokens: 24}
	// Sequential references.
	want := make([]string, 2)
	for i, pr := range prompts {
		s := acquire(t, e, "")
		want[i], _, _ = gen(t, context.Background(), s, pr, p)
		s.Release()
	}
	var wg sync.WaitGroup
	got := make([]string, 2)
	errs := make([]error, 2)
	for round := 0; round < 3; round++ {
		for i := range prompts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := e.Acquire(context.Background(), []string{"a", "b"}[i])
				if err != nil {
					errs[i] = err
					return
				}
				defer s.Release()
				var out []byte
				_, errs[i] = s.Generate(context.Background(), prompts[i], p, func(b []byte) error {
					out = append(out, b...)
					return nil
				})
				got[i] = string(out)
			}()
		}
		wg.Wait()
		for i := range prompts {
			if errs[i] != nil || got[i] != want[i] {
				t.Errorf("round %d, conversation %d: %q, %v; alone it was %q", round, i, got[i], errs[i], want[i])
			}
		}
	}
}

func TestAcquireFIFO(t *testing.T) {
	e := load(t, "tiny", Config{Slots: 1, ContextSize: 128})
	held := acquire(t, e, "x")
	order := make(chan int, 3)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := e.Acquire(context.Background(), "")
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			s.Release()
		}()
		// Wait until the goroutine is queued, so the queue order is known.
		for {
			e.mu.Lock()
			n := len(e.waiters)
			e.mu.Unlock()
			if n == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	// A waiter that gives up leaves the queue.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := e.Acquire(ctx, "y"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("acquire with a deadline: %v", err)
	}
	held.Release()
	wg.Wait()
	close(order)
	want := 0
	for i := range order {
		if i != want {
			t.Errorf("slot went to waiter %d, want %d", i, want)
		}
		want++
	}
}

func TestStopSequences(t *testing.T) {
	e := load(t, "demo", Config{Slots: 1, ContextSize: 512})
	s := acquire(t, e, "")
	defer s.Release()
	prompt := chat(t, e, "hi")
	reply := testmodel.DemoReply
	for _, c := range []struct {
		stops []string
		want  string
	}{
		{[]string{"works."}, reply[:strings.Index(reply, "works.")]},
		{[]string{"zzz", " appliance"}, reply[:strings.Index(reply, " appliance")]},
		{[]string{"model:", "Kwyre"}, ""},
		{[]string{"chat.!"}, reply}, // a prefix held back until the end, then released
		{[]string{"not in the reply"}, reply},
	} {
		var stops [][]byte
		for _, x := range c.stops {
			stops = append(stops, []byte(x))
		}
		got, r, err := gen(t, context.Background(), s, prompt, Sampling{MaxTokens: 64, Stop: stops})
		if err != nil || got != c.want || r.FinishReason != "stop" {
			t.Errorf("stop %q: %q (%s, %v), want %q", c.stops, got, r.FinishReason, err, c.want)
		}
	}
	// MaxTokens ends with "length".
	_, r, err := gen(t, context.Background(), s, prompt, Sampling{MaxTokens: 3})
	if err != nil || r.FinishReason != "length" || r.CompletionTokens != 3 {
		t.Errorf("max_tokens 3: %+v, %v", r, err)
	}
}

func TestSeededSampling(t *testing.T) {
	e := load(t, "tiny", Config{Slots: 1, ContextSize: 256})
	s := acquire(t, e, "")
	defer s.Release()
	prompt := chat(t, e, "sample")
	run := func(seed uint64) string {
		out, _, err := gen(t, context.Background(), s, prompt, Sampling{Temperature: 1.5, TopP: 0.95, Seed: seed, MaxTokens: 32})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b, c := run(7), run(7), run(8)
	if a != b {
		t.Errorf("same seed, different text: %q vs %q", a, b)
	}
	if a == c {
		t.Errorf("seeds 7 and 8 gave the same %d bytes", len(a))
	}
}

func TestTokenizeAndRender(t *testing.T) {
	e := load(t, "tiny", Config{Slots: 1, ContextSize: 128})
	text, err := e.RenderChat([]Message{{Role: "system", Content: []byte("be brief")}, {Role: "user", Content: []byte("hi")}}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
	if string(text) != want {
		t.Errorf("rendered %q, want %q", text, want)
	}
	// Appends to dst.
	text2, err := e.RenderChat([]Message{{Role: "user", Content: []byte("hi")}}, false, []byte("X"))
	if err != nil || string(text2) != "X<|im_start|>user\nhi<|im_end|>\n" {
		t.Errorf("append render: %q, %v", text2, err)
	}
	if _, err := e.RenderChat([]Message{{Role: "user", Content: []byte("a\x00b")}}, true, nil); !errors.Is(err, ErrNUL) {
		t.Errorf("NUL byte: %v", err)
	}
	toks, err := e.Tokenize(text, nil)
	if err != nil || len(toks) == 0 {
		t.Fatalf("tokenize: %v", err)
	}
	// <|im_start|> is one special token, not its characters.
	if n := strings.Count(string(text), "<|im_start|>"); countTok(toks, toks[0]) < n {
		t.Errorf("special tokens not parsed: %d tokens for %d bytes", len(toks), len(text))
	}
	// A small dst grows; a longer text takes more tokens.
	long := bytes.Repeat([]byte("abc "), 500)
	lt, err := e.Tokenize(long, make([]int32, 0, 4))
	if err != nil || len(lt) < 100 {
		t.Errorf("long text: %d tokens, %v", len(lt), err)
	}
	if got, _ := e.Tokenize(nil, []int32{5}); len(got) != 1 {
		t.Errorf("empty text changed dst: %v", got)
	}
}

func countTok(toks []int32, t int32) int {
	n := 0
	for _, x := range toks {
		if x == t {
			n++
		}
	}
	return n
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(modelFile(t, "tiny"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name, path string
		want       error
	}{
		{"missing", filepath.Join(dir, "nope.gguf"), os.ErrNotExist},
		{"directory", dir, nil},
		{"empty", write("empty.gguf", nil), ErrNotGGUF},
		{"not gguf", write("text.gguf", []byte("hello, this is not a model")), ErrNotGGUF},
		{"truncated", write("trunc.gguf", good[:len(good)/2]), nil},
		{"header only", write("head.gguf", good[:64]), nil},
	} {
		e, err := Load(Config{ModelPath: c.path, Slots: 1, ContextSize: 64}, nil)
		if err == nil {
			e.Close()
			t.Errorf("%s: loaded", c.name)
			continue
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestLoadProgressAndClose(t *testing.T) {
	var ps []float32
	e, err := Load(Config{ModelPath: modelFile(t, "tiny"), Slots: 1, ContextSize: 64, Threads: 1}, func(p float32) { ps = append(ps, p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 || ps[len(ps)-1] != 1 {
		t.Errorf("progress %v: want a last value of 1", ps)
	}
	for i := 1; i < len(ps); i++ {
		if ps[i] < ps[i-1] {
			t.Errorf("progress went back: %v", ps)
		}
	}
	s := acquire(t, e, "")
	done := make(chan error, 1)
	go func() {
		_, err := e.Acquire(context.Background(), "")
		done <- err
	}()
	for {
		e.mu.Lock()
		n := len(e.waiters)
		e.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	go func() { time.Sleep(20 * time.Millisecond); s.Release() }()
	e.Close() // waits for the held slot
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("waiter at close: %v", err)
	}
	if _, err := e.Acquire(context.Background(), ""); !errors.Is(err, ErrClosed) {
		t.Errorf("acquire after close: %v", err)
	}
	e.Close() // twice is fine
}

// TestNoAllocationPerToken: a 64-token generation allocates no more Go
// memory than a 1-token one.
func TestNoAllocationPerToken(t *testing.T) {
	e := load(t, "tiny", Config{Slots: 1, ContextSize: 256})
	s := acquire(t, e, "")
	defer s.Release()
	prompt := chat(t, e, "allocations")
	emit := func([]byte) error { return nil }
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(5, func() {
			s.Wipe()
			r, err := s.Generate(context.Background(), prompt, Sampling{MaxTokens: n}, emit)
			if err != nil || r.CompletionTokens != n {
				t.Fatalf("%d tokens: %+v, %v", n, r, err)
			}
		})
	}
	one, many := allocs(1), allocs(64)
	if many > one {
		t.Errorf("%.1f allocations for 1 token, %.1f for 64", one, many)
	}
}

func TestBadTokens(t *testing.T) {
	e := load(t, "tiny", Config{Slots: 1, ContextSize: 64})
	s := acquire(t, e, "")
	defer s.Release()
	for _, prompt := range [][]int32{{1, 2, -5}, {1, int32(e.Info().NVocab)}} {
		_, r, err := gen(t, context.Background(), s, prompt, Sampling{MaxTokens: 4})
		var de *DecodeError
		if !errors.As(err, &de) || r.CompletionTokens != 0 {
			t.Errorf("prompt %v: %v, %+v", prompt, err, r)
		}
		if s.KVCells() != s.CachedTokens() {
			t.Errorf("after a failed prompt: %d cells, %d cached tokens", s.KVCells(), s.CachedTokens())
		}
	}
	if _, _, err := gen(t, context.Background(), s, nil, Sampling{}); !errors.Is(err, ErrEmptyPrompt) {
		t.Errorf("empty prompt: %v", err)
	}
}

// Without a GPU, EmbdOnGPU leaves the embedding where it is and says so;
// the replies are the same as without it.
func TestEmbdOnGPUWithoutGPU(t *testing.T) {
	plain := load(t, "tiny", Config{Slots: 1, ContextSize: 256})
	asked := load(t, "tiny", Config{Slots: 1, ContextSize: 256, EmbdOnGPU: true, GPULayers: -1})
	if asked.Info().EmbdOnGPU {
		t.Fatalf("EmbdOnGPU reported on backend %s", asked.Info().Backend)
	}
	var out [2]string
	for i, e := range []*Engine{plain, asked} {
		s := acquire(t, e, "")
		text, _, err := gen(t, context.Background(), s, chat(t, e, "hello"), Sampling{MaxTokens: 16})
		s.Release()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = text
	}
	if out[0] != out[1] {
		t.Errorf("replies differ: %q and %q", out[0], out[1])
	}
}

func TestWarmup(t *testing.T) {
	if _, err := Load(Config{ModelPath: modelFile(t, "tiny"), Warmup: "sometimes"}, nil); err == nil ||
		!strings.Contains(err.Error(), "warm-up") {
		t.Fatalf("bad Warmup: err = %v", err)
	}
	cold := load(t, "tiny", Config{Slots: 1, ContextSize: 256})
	if cold.Info().WarmupTime != 0 {
		t.Errorf("auto warmed up on %s", cold.Info().Backend)
	}
	warm := load(t, "tiny", Config{Slots: 2, ContextSize: 256, BatchSize: 64, Warmup: "on"})
	if warm.Info().WarmupTime <= 0 {
		t.Fatalf("Warmup on: WarmupTime = %v", warm.Info().WarmupTime)
	}
	ref := acquire(t, cold, "")
	empty := ref.KVStateBytes()
	prompt := chat(t, cold, "hello there")
	want, _, err := gen(t, context.Background(), ref, prompt, Sampling{MaxTokens: 16})
	ref.Release()
	if err != nil {
		t.Fatal(err)
	}
	// Both slots come out of the warm-up wiped: no cells, nothing cached, and
	// the same reply as a slot that never ran.
	slots := []*Slot{acquire(t, warm, "a"), acquire(t, warm, "b")}
	for i, s := range slots {
		if s.KVCells() != 0 || s.CachedTokens() != 0 || s.KVStateBytes() != empty {
			t.Errorf("slot %d after warm-up: %d cells, %d cached, %d state bytes (empty %d)",
				i, s.KVCells(), s.CachedTokens(), s.KVStateBytes(), empty)
		}
		got, r, err := gen(t, context.Background(), s, prompt, Sampling{MaxTokens: 16})
		if err != nil || got != want || r.CachedTokens != 0 || r.EvaluatedTokens != len(prompt) {
			t.Errorf("slot %d after warm-up: %q, %+v, %v; want %q", i, got, r, err, want)
		}
		s.Release()
	}
}
