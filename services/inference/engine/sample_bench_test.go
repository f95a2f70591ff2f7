package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

const llama3Vocab = 128256

// testLogits are Llama 3-sized logits: flat (a random-weight model's) or
// peaked (a trained model's: a few likely tokens and a long tail).
func testLogits(peaked bool, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 2))
	x := make([]float32, llama3Vocab)
	for i := range x {
		if peaked {
			// Log-probability falling with the log of the rank.
			x[i] = float32(-2.5*math.Log(float64(i+1)) + 0.5*r.NormFloat64())
		} else {
			x[i] = float32(r.NormFloat64())
		}
	}
	r.Shuffle(len(x), func(i, j int) { x[i], x[j] = x[j], x[i] })
	return x
}

// BenchmarkSample is the sampler's cost per token over 128,256 logits at
// the API's defaults (temperature 0.8, top-p 0.95): the engine's kw_draw
// against llama.cpp's sampler chain, which it replaced, and the greedy pick.
func BenchmarkSample(b *testing.B) {
	for _, lg := range []struct {
		name   string
		logits []float32
	}{{"flat", testLogits(false, 1)}, {"peaked", testLogits(true, 1)}} {
		b.Run(lg.name+"/greedy", func(b *testing.B) {
			for b.Loop() {
				argmax(lg.logits)
			}
		})
		b.Run(lg.name+"/kwyre", func(b *testing.B) {
			d := newDrawer(0.8, 0.95, 42, llama3Vocab)
			defer d.free()
			for b.Loop() {
				if t := d.draw(lg.logits); t < 0 {
					b.Fatal("no token")
				}
			}
		})
		b.Run(lg.name+"/llama.cpp", func(b *testing.B) {
			s := newRefSampler(0.8, 0.95, 42, llama3Vocab)
			defer s.free()
			for b.Loop() {
				if t := s.sample(lg.logits); t < 0 {
					b.Fatal("no token")
				}
			}
		})
	}
}
