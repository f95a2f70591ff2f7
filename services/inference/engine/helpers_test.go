package engine

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kwyre/kwyre/tools/testmodel"
)

var (
	modelMu    sync.Mutex
	modelFiles = map[string]string{}
)

// modelFile writes a test model once per test binary (into the first
// caller's t.TempDir would vanish with that test, so into a shared temp dir).
func modelFile(t testing.TB, preset string) string {
	t.Helper()
	modelMu.Lock()
	defer modelMu.Unlock()
	if p, ok := modelFiles[preset]; ok {
		return p
	}
	p := filepath.Join(sharedDir, preset+".gguf")
	if err := testmodel.WriteFile(p, testmodel.Options{Preset: preset, Type: "f32", Seed: 1}); err != nil {
		t.Fatalf("write %s model: %v", preset, err)
	}
	modelFiles[preset] = p
	return p
}

func load(t testing.TB, preset string, cfg Config) *Engine {
	t.Helper()
	cfg.ModelPath = modelFile(t, preset)
	if cfg.Threads == 0 {
		cfg.Threads = 1 // the test machine is shared: ggml's threads spin at barriers
	}
	e, err := Load(cfg, nil)
	if err != nil {
		t.Fatalf("load %s: %v", preset, err)
	}
	t.Cleanup(e.Close)
	return e
}

func chat(t testing.TB, e *Engine, msgs ...string) []int32 {
	t.Helper()
	roles := []string{"user", "assistant"}
	var m []Message
	for i, c := range msgs {
		m = append(m, Message{Role: roles[i%2], Content: []byte(c)})
	}
	text, err := e.RenderChat(m, true, nil)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	toks, err := e.Tokenize(text, nil)
	if err != nil {
		t.Fatalf("tokenize: %v", err)
	}
	return toks
}

// gen runs one generation on s and returns its text.
func gen(t testing.TB, ctx context.Context, s *Slot, prompt []int32, p Sampling) (string, Result, error) {
	t.Helper()
	var out []byte
	r, err := s.Generate(ctx, prompt, p, func(b []byte) error {
		out = append(out, b...)
		return nil
	})
	return string(out), r, err
}

func acquire(t testing.TB, e *Engine, owner string) *Slot {
	t.Helper()
	s, err := e.Acquire(context.Background(), owner)
	if err != nil {
		t.Fatalf("acquire %q: %v", owner, err)
	}
	return s
}
