package engine

import (
	"context"
	"testing"
	"time"
)

// BenchmarkGenerate reports the engine alone on the tiny model: time to
// first token of a stateless request (its prompt evaluated in full) and
// decoding speed, greedy, 64 tokens a run.
func BenchmarkGenerate(b *testing.B) {
	for _, preset := range []string{"tiny", "demo"} {
		b.Run(preset, func(b *testing.B) {
			e := load(b, preset, Config{Slots: 1, ContextSize: 512})
			msgs := []Message{{Role: "user", Content: []byte("Tell me about the appliance, in some detail please.")}}
			var ttft, decode time.Duration
			var toks int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := e.Complete(context.Background(), "", msgs, Sampling{MaxTokens: 64}, func([]byte) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
				ttft += r.TimeToFirstToken
				decode += r.Duration - r.TimeToFirstToken
				toks += r.CompletionTokens - 1
			}
			b.ReportMetric(float64(ttft.Microseconds())/1e3/float64(b.N), "ms-ttft")
			if decode > 0 {
				b.ReportMetric(float64(toks)/decode.Seconds(), "tokens/s")
			}
		})
	}
}
