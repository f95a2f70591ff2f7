// Package testmodel generates llama-architecture GGUF models for tests and
// benchmarks: seeded random weights of several shapes, and a "demo" model
// whose constructed weights answer every chat prompt with DemoReply.
package testmodel

import (
	"fmt"
	"sort"
)

// Options selects what Write generates. Zero values pick defaults: preset
// "tiny", type f16 for the small presets and q4_0 for the real-model shapes.
type Options struct {
	Preset string // see Presets()
	Type   string // "f32", "f16", "q8_0", "q4_0" or "q4_k_m"
	Seed   uint64 // same seed, same bytes
}

// shape is a preset's hyperparameters.
type shape struct {
	embd, layers, heads, headsKV, ff int
	ctx                              int
	vocab                            int // 0: the generated vocabulary's natural size
	ropeBase                         float32
	eps                              float32
	tied                             bool // no output.weight: llama.cpp reuses token_embd
	demo                             bool // constructed weights, see demo.go
	defType                          string
}

var presets = map[string]shape{
	"demo":        {embd: 128, layers: 2, heads: 4, headsKV: 2, ff: 256, ctx: 4096, ropeBase: 10000, eps: 1e-5, demo: true, defType: "f16"},
	"tiny":        {embd: 64, layers: 2, heads: 4, headsKV: 2, ff: 256, ctx: 2048, vocab: 512, ropeBase: 10000, eps: 1e-5, defType: "f16"},
	"small":       {embd: 256, layers: 4, heads: 8, headsKV: 4, ff: 768, ctx: 4096, vocab: 2048, ropeBase: 10000, eps: 1e-5, defType: "f16"},
	"llama3.2-1b": {embd: 2048, layers: 16, heads: 32, headsKV: 8, ff: 8192, ctx: 131072, vocab: 128256, ropeBase: 500000, eps: 1e-5, tied: true, defType: "q4_0"},
	"llama3-8b":   {embd: 4096, layers: 32, heads: 32, headsKV: 8, ff: 14336, ctx: 8192, vocab: 128256, ropeBase: 500000, eps: 1e-5, defType: "q4_0"},
}

// Presets lists the preset names.
func Presets() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Types lists the weight types Write accepts.
func Types() []string { return []string{"f32", "f16", "q8_0", "q4_0", "q4_k_m"} }

func (o Options) resolve() (shape, string, error) {
	name := o.Preset
	if name == "" {
		name = "tiny"
	}
	s, ok := presets[name]
	if !ok {
		return shape{}, "", fmt.Errorf("unknown preset %q (have %v)", o.Preset, Presets())
	}
	typ := o.Type
	if typ == "" {
		typ = s.defType
	}
	switch typ {
	case "f32", "f16", "q8_0", "q4_0":
	case "q4_k_m":
		if s.demo {
			return shape{}, "", fmt.Errorf("preset demo has constructed weights; use f32, f16, q8_0 or q4_0, not %q", typ)
		}
	default:
		return shape{}, "", fmt.Errorf("unknown type %q (have %v)", o.Type, Types())
	}
	return s, typ, nil
}
