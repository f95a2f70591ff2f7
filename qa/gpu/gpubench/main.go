// Command gpubench measures the inference service through its HTTP streaming API, as a
// client would see it: prompt processing, time to first token, decode speed, a follow-up
// turn that reuses the session's KV cache, and aggregate speed with concurrent sessions.
// It prints one JSON object per measurement; qa/gpu/bench.sh turns them into a table.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type client struct {
	url, key string
	http     *http.Client
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	Details          struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// turn is one streamed chat turn as the client saw it.
type turn struct {
	Start, First, Last time.Time
	Chunks             int
	Usage              usage
}

func (c *client) post(path string, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest("POST", c.url+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	return c.http.Do(req)
}

// genTimes reads the service's generation time by part (seconds) and its
// completion tokens from /metrics.
func (c *client) genTimes() (map[string]float64, error) {
	req, err := http.NewRequest("GET", c.url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		key, ok := strings.CutPrefix(name, `kwyre_generation_seconds_total{part="`)
		switch {
		case ok:
		case name == `kwyre_tokens_total{kind="completion"}`:
			key, ok = "tokens", true
		case name == "kwyre_time_to_first_token_seconds_sum":
			key, ok = "ttft", true
		}
		if ok {
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return nil, fmt.Errorf("metrics: %q: %w", sc.Text(), err)
			}
			out[strings.TrimSuffix(key, `"}`)] = v
		}
	}
	if resp.StatusCode != 200 || len(out) < 6 {
		return nil, fmt.Errorf("metrics: %s, %d of 6 values", resp.Status, len(out))
	}
	return out, sc.Err()
}

func (c *client) session() (string, error) {
	resp, err := c.post("/v1/session", map[string]any{})
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		SessionID string `json:"session_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.SessionID == "" {
		return "", fmt.Errorf("create session: status %s: %v", resp.Status, err)
	}
	return out.SessionID, nil
}

func (c *client) end(id string) {
	if resp, err := c.post("/v1/session/end", map[string]any{"session_id": id}); err == nil {
		resp.Body.Close()
	}
}

// chat streams one greedy turn and records when each content chunk arrived.
func (c *client) chat(session, text string, maxTokens int) (turn, error) {
	return c.chatSampled(session, text, maxTokens, 0, 0)
}

// chatSampled is chat with a temperature and a top-p (0: the API's default).
func (c *client) chatSampled(session, text string, maxTokens int, temp, topP float64) (turn, error) {
	body := map[string]any{
		"messages":       []map[string]string{{"role": "user", "content": text}},
		"max_tokens":     maxTokens,
		"temperature":    temp,
		"stream":         true,
		"stream_options": map[string]any{"include_usage": true},
	}
	if topP > 0 {
		body["top_p"] = topP
	}
	if session != "" {
		body["session_id"] = session
	}
	t := turn{Start: time.Now()}
	resp, err := c.post("/v1/chat/completions", body)
	if err != nil {
		return t, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return t, fmt.Errorf("chat: %s: %s", resp.Status, msg)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		data := line[len("data: "):]
		if string(data) == "[DONE]" {
			break
		}
		var ev struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *usage `json:"usage"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			return t, fmt.Errorf("bad SSE event: %w", err)
		}
		if ev.Usage != nil {
			t.Usage = *ev.Usage
		}
		if len(ev.Choices) > 0 && ev.Choices[0].Delta.Content != "" {
			now := time.Now()
			if t.Chunks == 0 {
				t.First = now
			}
			t.Last = now
			t.Chunks++
		}
	}
	return t, sc.Err()
}

// words makes a prompt of about n tokens from a fixed word list (random weights do not care
// what the words say; a seeded generator keeps runs comparable).
func words(n int, seed uint64) string {
	list := strings.Fields("the quick brown fox jumps over a lazy dog while seven wizards " +
		"quietly judge boxing matches in distant harbor towns under amber lanterns")
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(list[r.IntN(len(list))])
		b.WriteByte(' ')
	}
	return b.String()
}

// sized is the longest prompt of words(n, seed) whose turn, the chat
// template's tokens included, takes at most want tokens, and that count: a
// one-token turn tells the service's count for a length (the words for a seed
// grow by appending, so the count grows with n).
func (c *client) sized(want int, seed uint64, perWord float64) (string, int, error) {
	count := func(n int) (int, error) {
		t, err := c.chat("", words(n, seed), 1)
		return t.Usage.PromptTokens, err
	}
	lo, hi := 1, int(float64(want)/perWord*1.25)+8 // lo fits; hi is searched for one that does not
	for {
		k, err := count(hi)
		if err != nil {
			return "", 0, err
		}
		if k > want {
			break
		}
		lo, hi = hi, 2*hi
	}
	best := 0
	for lo+1 < hi {
		mid := (lo + hi) / 2
		k, err := count(mid)
		if err != nil {
			return "", 0, err
		}
		if k <= want {
			lo, best = mid, k
		} else {
			hi = mid
		}
	}
	if best == 0 {
		k, err := count(lo)
		if err != nil {
			return "", 0, err
		}
		best = k
	}
	return words(lo, seed), best, nil
}

func emit(name string, kv ...any) {
	m := map[string]any{"name": name}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	fmt.Println(string(b))
}

func decodeRate(t turn) float64 {
	n := t.Usage.CompletionTokens
	if n < 2 || !t.Last.After(t.First) {
		return 0
	}
	// The first token is counted in TTFT; the rest arrive at the decode rate.
	return float64(n-1) / t.Last.Sub(t.First).Seconds()
}

func main() {
	url := flag.String("url", "http://127.0.0.1:8000", "service URL")
	keyFile := flag.String("api-key-file", "", "file holding the API key")
	gen := flag.Int("gen", 128, "tokens to generate per turn")
	long := flag.Int("long-prompt", 2000, "tokens in the long prompt")
	conc := flag.String("concurrency", "4,16", "concurrent sessions to measure")
	onlyConc := flag.Bool("only-concurrency", false, "after the warm-up, measure only the concurrent sessions")
	onlyPrompt := flag.Bool("only-prompt", false, "after the warm-up, measure only the 512-token prompts")
	promptReps := flag.Int("prompt-reps", 3, "512-token prompts to average")
	promptGen := flag.Int("prompt-gen", -1, "tokens to generate after each 512-token prompt (-1: -gen)")
	promptGap := flag.Duration("prompt-gap", 0, "pause before each 512-token prompt")
	table := flag.Bool("table", false, "print the table for the NAME.jsonl files given as arguments and exit")
	flag.Parse()
	if *table {
		if err := printTable(os.Stdout, flag.Args()); err != nil {
			fmt.Fprintln(os.Stderr, "gpubench:", err)
			os.Exit(1)
		}
		return
	}
	key, err := os.ReadFile(*keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpubench:", err)
		os.Exit(2)
	}
	c := &client{url: *url, key: strings.TrimSpace(string(key)), http: &http.Client{Timeout: 10 * time.Minute}}
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "gpubench: %s: %v\n", what, err)
		os.Exit(1)
	}

	// Warm-up: the first request pays for CUDA graph capture and allocations. It also
	// measures how many tokens a word takes in this model's vocabulary, so prompts can be
	// sized in tokens.
	w0, err := c.chat("", words(200, 99), 16)
	if err != nil {
		fail("warm-up", err)
	}
	perWord := float64(w0.Usage.PromptTokens) / 200
	if perWord <= 0 {
		perWord = 1
	}
	ofTokens := func(n int) int { return int(float64(n) / perWord) }
	if !*onlyConc {

		// pp512's analogue, stateless: prompts of at most 512 tokens (one
		// batch, as llama-bench's), each as long as the words allow, after
		// the warm-up, averaged, as llama-bench repeats its tests.
		var cliRate, svcRate, cliTTFT, svcTTFT float64
		var svcEach, cliEach []float64 // ms, each run: a first-run cost shows here
		var toksEach []int
		reps := float64(*promptReps)
		pgen := *promptGen
		if pgen < 0 {
			pgen = *gen
		}
		texts := make([]string, *promptReps)
		for i := range texts {
			var err error
			if texts[i], _, err = c.sized(512, uint64(1+i), perWord); err != nil {
				fail("size the 512-token prompts", err)
			}
		}
		for i := 0; i < *promptReps; i++ {
			time.Sleep(*promptGap)
			m0, err := c.genTimes()
			if err != nil {
				fail("metrics", err)
			}
			t, err := c.chat("", texts[i], pgen)
			if err != nil {
				fail("pp512", err)
			}
			m1, err := c.genTimes()
			if err != nil {
				fail("metrics", err)
			}
			// The client sees the first content chunk, which comes later than
			// the first token when its bytes are held back (an incomplete
			// UTF-8 sequence: common in a random-weight model's replies); the
			// service's own time to first token counts from the start of
			// generation, after parsing, templating and tokenizing.
			svc, cli := m1["ttft"]-m0["ttft"], t.First.Sub(t.Start).Seconds()
			promptToks := t.Usage.PromptTokens
			toksEach = append(toksEach, promptToks)
			cliRate += float64(promptToks) / cli / reps
			svcRate += float64(promptToks) / svc / reps
			cliTTFT += cli * 1e3 / reps
			svcTTFT += svc * 1e3 / reps
			cliEach, svcEach = append(cliEach, cli*1e3), append(svcEach, svc*1e3)
		}
		emit("prompt_512", "prompt_tokens", slices.Min(toksEach), "prompt_tokens_max", slices.Max(toksEach),
			"prompt_tokens_each", toksEach, "ttft_ms", cliTTFT, "prompt_tokens_per_s", cliRate,
			"service_ttft_ms", svcTTFT, "service_prompt_tokens_per_s", svcRate, "runs", *promptReps,
			"ttft_ms_each", cliEach, "service_ttft_ms_each", svcEach, "gen", pgen, "gap_ms", promptGap.Milliseconds())
		if *onlyPrompt {
			return
		}
		// tg128's analogue: decoding from a short prompt (llama-bench starts at
		// an empty cache), three turns, averaged.
		// decodeTurns runs three stateless turns after a short prompt and
		// emits their mean decode rate as name.
		decodeTurns := func(name string, temp, topP float64) {
			var rate float64
			var toks int
			const runs = 3
			for i := 0; i < runs; i++ {
				t, err := c.chatSampled("", words(8, 3), *gen, temp, topP)
				if err != nil {
					fail(name, err)
				}
				rate += decodeRate(t)
				toks += t.Usage.CompletionTokens
			}
			emit(name, "completion_tokens", toks/runs, "tokens_per_s", rate/runs, "runs", runs)
		}
		before, err := c.genTimes()
		if err != nil {
			fail("metrics", err)
		}
		decodeTurns("decode", 0, 0)
		// Where the service's time per token went, from its own counters.
		after, err := c.genTimes()
		if err != nil {
			fail("metrics", err)
		}
		per := func(k string) float64 { return (after[k] - before[k]) * 1e6 / (after["tokens"] - before["tokens"]) }
		emit("decode_parts", "decode_us", per("decode"), "wait_us", per("wait"), "sample_us", per("sample"),
			"other_us", per("other"))
		// The same at the API's default sampling, which a chat uses: the
		// sampler then runs on every token between two decodes. A random-weight
		// model's logits are flat, the costliest case for top-p.
		decodeTurns("decode_sampled", 0.8, 0.95)
		// Steady state, as llama-bench's tg measures it: the same greedy
		// turn to gen and to 2×gen tokens; the difference is decode alone,
		// without the once-per-turn costs after the prompt (the first token,
		// llama.cpp's graph rebuilt for single tokens).
		var extraToks int
		var extraTime float64
		for i := 0; i < 3; i++ {
			short, err := c.chat("", words(8, 4), *gen)
			if err != nil {
				fail("decode steady", err)
			}
			long, err := c.chat("", words(8, 4), 2**gen)
			if err != nil {
				fail("decode steady", err)
			}
			dn := long.Usage.CompletionTokens - short.Usage.CompletionTokens
			dt := long.Last.Sub(long.First).Seconds() - short.Last.Sub(short.First).Seconds()
			if dn > 0 && dt > 0 {
				extraToks += dn
				extraTime += dt
			}
		}
		if extraTime > 0 {
			emit("decode_steady", "tokens", extraToks, "tokens_per_s", float64(extraToks)/extraTime)
		}

		// Long prompt, then a follow-up in the same session that reuses its
		// KV cache: two rounds, the second reported (the first pays for
		// what a process does once per batch shape, such as loading kernels).
		for round := 0; round < 2; round++ {
			sid, err := c.session()
			if err != nil {
				fail("session", err)
			}
			t, err := c.chat(sid, words(ofTokens(*long), uint64(2+10*round)), *gen)
			if err != nil {
				fail("long prompt", err)
			}
			long := t
			t, err = c.chat(sid, "and one more short question about the harbor", *gen)
			if err != nil {
				fail("follow-up", err)
			}
			c.end(sid)
			if round == 1 {
				emit("long_prompt", "prompt_tokens", long.Usage.PromptTokens, "ttft_ms", ms(long.First.Sub(long.Start)),
					"decode_tokens_per_s", decodeRate(long))
				emit("follow_up", "prompt_tokens", t.Usage.PromptTokens, "cached_tokens", t.Usage.Details.CachedTokens,
					"ttft_ms", ms(t.First.Sub(t.Start)), "decode_tokens_per_s", decodeRate(t))
			}
		}

	}

	for _, f := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			continue
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		total, errs := 0, 0
		start := time.Now()
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				sid, err := c.session()
				if err == nil {
					var t turn
					t, err = c.chat(sid, words(ofTokens(128), uint64(10+i)), *gen)
					c.end(sid)
					mu.Lock()
					total += t.Usage.CompletionTokens
					mu.Unlock()
				}
				if err != nil {
					mu.Lock()
					errs++
					mu.Unlock()
				}
			}(i)
		}
		wg.Wait()
		wall := time.Since(start)
		emit("concurrent", "sessions", n, "completion_tokens", total, "errors", errs,
			"seconds", wall.Seconds(), "aggregate_tokens_per_s", float64(total)/wall.Seconds())
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
