// Command enginebench measures the engine alone (no HTTP) on a model: prompt processing
// of a 512-token prompt and greedy decoding, the analogues of llama-bench's pp512 and
// tg128. It prints JSON lines like gpubench, plus the GPU's peak memory bandwidth.
// -profile adds llama-bench's own loop run in the same process (the same-run
// reference) with a split of each token's time; -series runs that loop alone,
// optionally with prompts in between; -kv-check reads the KV cache back from
// the device around a wipe.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/kwyre/kwyre/services/inference/engine"
	"github.com/kwyre/kwyre/services/inference/gpu"
)

func emit(name string, kv ...any) {
	m := map[string]any{"name": name}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	fmt.Println(string(b))
}

func main() {
	model := flag.String("model", "", "GGUF model")
	backend := flag.String("backend-dir", "", "folder holding libggml-cuda.so (path must contain lib/ollama)")
	layers := flag.Int("gpu-layers", -1, "layers to offload (-1 = all)")
	gen := flag.Int("gen", 128, "tokens to decode")
	runs := flag.Int("runs", 3, "measured runs (after one warm-up)")
	promptLen := flag.Int("prompt", 512, "prompt tokens")
	threads := flag.Int("threads", 0, "CPU threads (0 = the engine's default)")
	fa := flag.String("fa", "auto", "flash attention: auto, on or off")
	profile := flag.Bool("profile", false, "also split single-token decode time into llama_decode, waiting and sampling")
	series := flag.Int("series", 0, "only run this many bare decode loops back to back and print each (GPU time drift)")
	batch := flag.Int("batch", 0, "tokens per llama_decode of a prompt (0 = the engine's default)")
	seriesPP := flag.Int("series-prompt-every", 0, "in -series, evaluate the prompt before every this many loops")
	steps := flag.String("steps", "", "only run these steps in one context, comma-separated: L (a bare decode loop of -gen tokens), N (the same asking for no logits), "+
		"Pn (evaluate n prompt tokens), Gn (generate one token after n prompt tokens), "+
		"S (switch to the engine's other slot, which has its own context); every step but S leaves the slot wiped")
	want := flag.String("want-backend", "", "fail unless the model loads on this backend (CUDA, say) instead of falling back")
	embdGPU := flag.Bool("embd-gpu", false, "put the token embedding on the GPU with the layers (engine.Config.EmbdOnGPU)")
	pollute := flag.Int("pollute-kb", 0, "after each decoded token, write this many KB of memory, as the service's HTTP path between tokens would (cache experiment)")
	polluteAway := flag.Bool("pollute-elsewhere", false, "with -pollute-kb: do the writing on another goroutine, not the generating thread")
	kvCheck := flag.Bool("kv-check", false, "only read the KV cache back from the device after a generation and after a wipe (no speed figures)")
	logitsOut := flag.String("logits-out", "", "with -reply: also write the logits after the prompt to this file (float32, little-endian), to compare backends' arithmetic")
	replyAfter := flag.Bool("reply", false, "only generate -gen greedy tokens after the -prompt tokens and print the reply's hash: equal across builds and settings that keep the math")
	flag.Parse()

	probe := gpu.Open("")
	sys := probe.Snapshot()
	probe.Close()
	if len(sys.Devices) > 0 {
		d := sys.Devices[0]
		emit("gpu", "device", d.Name, "driver", sys.Driver, "cuda", sys.CUDA,
			"memory_bandwidth_bytes_per_s", d.MemoryBandwidth, "memory_total_bytes", d.MemoryTotal)
	}

	slots := 1
	if strings.Contains(*steps, "S") {
		slots = 2
	}
	e, err := engine.Load(engine.Config{ModelPath: *model, GPULayers: *layers, Slots: slots,
		ContextSize: 2048, BackendDir: *backend, Threads: *threads, FlashAttention: *fa, KVProbe: *kvCheck,
		BatchSize: *batch, EmbdOnGPU: *embdGPU}, nil)
	if err != nil {
		fatal("", err)
	}
	defer e.Close()
	info := e.Info()
	if *want != "" && info.Backend != *want {
		fatal("", fmt.Errorf("model loaded on %s, not %s (see the load log above)", info.Backend, *want))
	}
	emit("model", "path", *model, "bytes", info.ModelBytes, "layers_on_gpu", info.LayersOnGPU,
		"backend", info.Backend, "embd_on_gpu", info.EmbdOnGPU, "load_seconds", info.LoadTime.Seconds())

	// Exactly -prompt tokens: tokenize a long text and cut it, as llama-bench feeds pp512.
	text := []byte(strings.Repeat("the quick brown fox jumps over a lazy dog ", 400))
	all, err := e.Tokenize(text, nil)
	if err == nil && len(all) < *promptLen {
		err = fmt.Errorf("%d tokens, fewer than -prompt %d", len(all), *promptLen)
	}
	if err != nil {
		fatal("tokenize", err)
	}
	prompt := all[:*promptLen]
	if *steps != "" {
		runSteps(e, all, *steps, *gen)
		return
	}
	if *series > 0 {
		for i := 0; i < *series; i++ {
			if *seriesPP > 0 && i > 0 && i%*seriesPP == 0 {
				s, err := e.Acquire(context.Background(), "")
				if err != nil {
					fatal("", err)
				}
				_, err = s.Generate(context.Background(), prompt, engine.Sampling{MaxTokens: 1}, func([]byte) error { return nil })
				s.Release()
				if err != nil {
					fatal("", err)
				}
				emit("series_prompt", "tokens", len(prompt))
			}
			emitProfile(fmt.Sprintf("series_%d", i), profileDecode(e, prompt[0], *gen, false))
		}
		return
	}
	if *replyAfter {
		emitReply(e, prompt, *gen, *logitsOut)
		return
	}
	if *kvCheck {
		// Alone: the probe's eval callback turns CUDA graphs off, so no
		// speed is measured in this mode.
		checkKV(e, prompt, *gen)
		return
	}
	// Each run measures the engine and, right after, the bare loops, so all
	// run in the same state: after prompts the whole process can decode
	// single tokens 5-7% more slowly for good (qa/gpu/README.md), and the
	// engine's runs evaluate prompts.
	var ppSum, tgSum float64
	var raw, sampled engine.DecodeProfile
	var n, promptToks, genToks int
	var replyHash uint64 // of the greedy reply: equal across builds and settings that keep the math
	junk := make([]byte, *pollute<<10)
	dirty := func() {
		for i := 0; i < len(junk); i += 64 {
			junk[i]++
		}
	}
	away := make(chan struct{}, 1024)
	if *polluteAway {
		go func() {
			for range away {
				dirty()
			}
		}()
	}
	for i := 0; i <= *runs; i++ {
		s, err := e.Acquire(context.Background(), "")
		if err != nil {
			fatal("", err)
		}
		// pp: the whole prompt and one token; tg: from a one-token prompt,
		// so decoding starts at an empty cache as llama-bench's tg128 does.
		p, err := s.Generate(context.Background(), prompt, engine.Sampling{MaxTokens: 1},
			func([]byte) error { return nil })
		s.Wipe()
		var r engine.Result
		reply := fnv.New64a()
		if err == nil {
			r, err = s.Generate(context.Background(), prompt[:1], engine.Sampling{MaxTokens: *gen},
				func(b []byte) error {
					reply.Write(b)
					if *pollute > 0 {
						if *polluteAway {
							away <- struct{}{}
						} else {
							dirty()
						}
					}
					return nil
				})
		}
		replyHash = reply.Sum64()
		s.Release()
		if err != nil {
			fatal("", err)
		}
		var pr, ps engine.DecodeProfile
		if *profile {
			pr, ps = profileDecode(e, prompt[0], *gen, false), profileDecode(e, prompt[0], *gen, true)
		}
		if i == 0 {
			continue // warm-up: allocations, CUDA graph capture
		}
		pp := float64(p.EvaluatedTokens) / p.TimeToFirstToken.Seconds()
		decode := r.Duration - r.TimeToFirstToken
		tg := 0.0
		if r.CompletionTokens > 1 && decode > 0 {
			tg = float64(r.CompletionTokens-1) / decode.Seconds()
		}
		ppSum += pp
		tgSum += tg
		raw, sampled = add(raw, pr), add(sampled, ps)
		n++
		promptToks, genToks = p.EvaluatedTokens, r.CompletionTokens
	}
	emit("engine", "threads", *threads, "prompt_tokens", promptToks, "prompt_tokens_per_s", ppSum/float64(n),
		"completion_tokens", genToks, "tokens_per_s", tgSum/float64(n), "runs", n,
		"reply_fnv64", fmt.Sprintf("%016x", replyHash), "cuda_graph_opt", info.GraphOpt)
	if *profile {
		emitProfile("profile_raw", raw)
		emitProfile("profile_sampled", sampled)
		// The sampler alone at the API's defaults, on this machine's CPU,
		// against llama.cpp's chain, over logits of the model's vocabulary:
		// flat (random normal, as a random-weight model's) and peaked (a
		// trained model's: log-probability falling with the log of the rank).
		r := rand.New(rand.NewPCG(1, 2))
		flat, peaked := make([]float32, info.NVocab), make([]float32, info.NVocab)
		for i := range flat {
			flat[i] = float32(r.NormFloat64())
			peaked[i] = float32(-2.5*math.Log(float64(i+1)) + 0.5*r.NormFloat64())
		}
		r.Shuffle(len(peaked), func(i, j int) { peaked[i], peaked[j] = peaked[j], peaked[i] })
		us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
		ours, ref := engine.SamplingCost(flat, 0.8, 0.95, 50)
		oursP, refP := engine.SamplingCost(peaked, 0.8, 0.95, 50)
		emit("sampling", "vocab", info.NVocab, "kwyre_us", us(ours), "llama_cpp_us", us(ref),
			"kwyre_peaked_us", us(oursP), "llama_cpp_peaked_us", us(refP))
	}
}

// fatal prints what failed and exits.
func fatal(what string, err error) {
	if what != "" {
		what += ": "
	}
	fmt.Fprintf(os.Stderr, "enginebench: %s%v\n", what, err)
	os.Exit(1)
}

func add(a, b engine.DecodeProfile) engine.DecodeProfile {
	return engine.DecodeProfile{Tokens: a.Tokens + b.Tokens, Decode: a.Decode + b.Decode,
		Wait: a.Wait + b.Wait, Sample: a.Sample + b.Sample}
}

// profileDecode runs llama-bench-style single-token steps from an empty
// cache, as tg128 does: raw feeds the same token and never reads the
// logits, as llama-bench does; sampled takes the argmax each step, as a
// chat does.
func profileDecode(e *engine.Engine, tok int32, n int, sample bool) engine.DecodeProfile {
	s, err := e.Acquire(context.Background(), "")
	if err != nil {
		fatal("", err)
	}
	defer s.Release()
	p, err := s.ProfileDecode(tok, n, sample)
	if err != nil {
		fatal("profile", err)
	}
	return p
}

// emitProfile prints where the time of the steps went: in llama_decode,
// waiting for the device, sampling.
func emitProfile(name string, p engine.DecodeProfile) {
	if p.Tokens == 0 {
		return
	}
	per := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(p.Tokens) }
	total := p.Decode + p.Wait + p.Sample
	emit(name, "tokens", p.Tokens, "tokens_per_s", float64(p.Tokens)/total.Seconds(),
		"decode_us", per(p.Decode), "wait_us", per(p.Wait), "sample_us", per(p.Sample))
}

// emitReply prints the hash of a greedy reply after the prompt: the prompt's
// batched kernels and the single-token ones both shape it.
func emitReply(e *engine.Engine, prompt []int32, n int, logitsOut string) {
	s, err := e.Acquire(context.Background(), "reply")
	if err != nil {
		fatal("", err)
	}
	defer s.Release()
	if logitsOut != "" {
		logits := make([]float32, e.Info().NVocab)
		if err := s.PromptLogits(prompt, logits); err != nil {
			fatal("logits", err)
		}
		b := make([]byte, 0, 4*len(logits))
		for _, v := range logits {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		if err := os.WriteFile(logitsOut, b, 0o644); err != nil {
			fatal("logits", err)
		}
	}
	h := fnv.New64a()
	r, err := s.Generate(context.Background(), prompt, engine.Sampling{MaxTokens: n},
		func(b []byte) error { h.Write(b); return nil })
	if err != nil {
		fatal("", err)
	}
	s.Wipe()
	emit("reply", "prompt_tokens", len(prompt), "completion_tokens", r.CompletionTokens, "reply_fnv64", fmt.Sprintf("%016x", h.Sum64()))
}

// checkKV shows that a wipe zeroes the KV data where it lives: read back
// after a generation (non-zero) and after the wipe (must be all zero).
func checkKV(e *engine.Engine, prompt []int32, n int) {
	s, err := e.Acquire(context.Background(), "kv-check")
	if err != nil {
		fatal("", err)
	}
	defer s.Release()
	if _, err := s.Generate(context.Background(), prompt, engine.Sampling{MaxTokens: n},
		func([]byte) error { return nil }); err != nil {
		fatal("kv-check", err)
	}
	before, total, err := s.KVNonZero()
	if err != nil {
		fatal("kv-check", err)
	}
	cells := s.KVCells()
	s.Wipe()
	after, _, err := s.KVNonZero()
	if err != nil {
		fatal("kv-check", err)
	}
	emit("kv_check", "kv_bytes", total, "cells_before_wipe", cells, "nonzero_bytes_before_wipe", before,
		"nonzero_bytes_after_wipe", after, "cells_after_wipe", s.KVCells())
	if after != 0 {
		fatal("kv-check", fmt.Errorf("%d KV bytes still non-zero after the wipe", after))
	}
}

// runSteps runs -steps in one slot, printing each decode loop's split and
// each step's time: it shows which earlier steps leave the context decoding
// single tokens more slowly.
func runSteps(e *engine.Engine, toks []int32, steps string, gen int) {
	var held []*engine.Slot
	defer func() {
		for _, s := range held {
			s.Release()
		}
	}()
	s, err := e.Acquire(context.Background(), "a")
	if err != nil {
		fatal("", err)
	}
	held = append(held, s)
	for i, st := range strings.Split(steps, ",") {
		name := fmt.Sprintf("step_%d_%s", i, st)
		t0 := time.Now()
		switch {
		case st == "L" || st == "N":
			var p engine.DecodeProfile
			if st == "N" {
				p, err = s.ProfileDecodeNoLogits(toks[0], gen)
			} else {
				p, err = s.ProfileDecode(toks[0], gen, false)
			}
			if err != nil {
				fatal(name, err)
			}
			emitProfile(name, p)
			continue
		case st == "S":
			if len(held) == 1 {
				var b *engine.Slot
				if b, err = e.Acquire(context.Background(), "b"); err == nil {
					held = append(held, b)
				}
			}
			if s == held[0] && len(held) == 2 {
				s = held[1]
			} else {
				s = held[0]
			}
		case len(st) > 1 && (st[0] == 'P' || st[0] == 'G'):
			var n int
			if _, err = fmt.Sscanf(st[1:], "%d", &n); err == nil && (n < 1 || n > len(toks)) {
				err = fmt.Errorf("prompt of %d tokens: have %d", n, len(toks))
			}
			switch {
			case err != nil:
			case st[0] == 'G':
				_, err = s.Generate(context.Background(), toks[:n], engine.Sampling{MaxTokens: 1}, func([]byte) error { return nil })
				s.Wipe()
			default:
				err = s.EvalPrompt(toks[:n])
			}
		default:
			err = fmt.Errorf("unknown step %q", st)
		}
		if err != nil {
			fatal(name, err)
		}
		emit(name, "ms", float64(time.Since(t0).Microseconds())/1000)
	}
}
