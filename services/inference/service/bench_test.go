package service

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/inference/engine"
)

const (
	benchPrompt = "Tell me a long story about a lighthouse."
	benchTokens = 64
)

// genStats accumulates time to first token and decode speed.
type genStats struct {
	ttft   time.Duration
	decode time.Duration // first token to last
	tokens int           // tokens after the first
	n      int
}

func (g *genStats) add(start, first, end time.Time, completion int) {
	g.ttft += first.Sub(start)
	g.decode += end.Sub(first)
	g.tokens += completion - 1
	g.n++
}

func (g *genStats) report(b *testing.B) {
	if g.n == 0 {
		return
	}
	b.ReportMetric(float64(g.ttft.Microseconds())/1000/float64(g.n), "ttft_ms")
	if g.decode > 0 {
		b.ReportMetric(float64(g.tokens)/g.decode.Seconds(), "tokens/s")
	}
	b.ReportMetric(float64(g.tokens+g.n)/float64(g.n), "tokens/op")
}

// BenchmarkTiny measures the tiny model's time to first token and decode
// speed, first through the engine alone, then through the HTTP API with
// streaming, in one service so both share the loaded model.
func BenchmarkTiny(b *testing.B) {
	c := start(b, Options{Model: models.tiny, Ctx: 1024, Slots: 1})
	eng := c.svc.Engine()
	samp := engine.Sampling{Temperature: 0.8, TopP: 0.95, Seed: 42, MaxTokens: benchTokens}

	b.Run("engine", func(b *testing.B) {
		var st genStats
		for b.Loop() {
			start := time.Now()
			text, err := eng.RenderChat([]engine.Message{{Role: "user", Content: []byte(benchPrompt)}}, true, nil)
			if err != nil {
				b.Fatal(err)
			}
			toks, err := eng.Tokenize(text, nil)
			if err != nil {
				b.Fatal(err)
			}
			slot, err := eng.Acquire(context.Background(), "")
			if err != nil {
				b.Fatal(err)
			}
			var first time.Time
			res, err := slot.Generate(context.Background(), toks, samp, func([]byte) error {
				if first.IsZero() {
					first = time.Now()
				}
				return nil
			})
			end := time.Now()
			slot.Release()
			if err != nil {
				b.Fatal(err)
			}
			if res.CompletionTokens > 1 {
				st.add(start, first, end, res.CompletionTokens)
			}
		}
		st.report(b)
	})

	b.Run("http-stream", func(b *testing.B) {
		var st genStats
		body := `{"stream":true,"max_tokens":64,"temperature":0.8,"top_p":0.95,"seed":42,"messages":` + userMsg(benchPrompt) + `}`
		for b.Loop() {
			start := time.Now()
			req, _ := http.NewRequest("POST", c.base+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+c.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var first time.Time
			nTokens := 0
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				data, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok || data == "[DONE]" {
					continue
				}
				var ch completion
				if err := json.Unmarshal([]byte(data), &ch); err != nil {
					b.Fatal(err)
				}
				if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != nil && *ch.Choices[0].Delta.Content != "" && first.IsZero() {
					first = time.Now()
				}
				if ch.Usage != nil {
					nTokens = ch.Usage.CompletionTokens
				}
			}
			end := time.Now()
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
			if nTokens > 1 && !first.IsZero() {
				st.add(start, first, end, nTokens)
			}
		}
		st.report(b)
	})
}
