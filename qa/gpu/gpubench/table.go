package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// reference holds llama.cpp's own llama-bench figures on the H100 (upstream b10587):
// prompt tokens/s (pp512) and decode tokens/s (tg128, flash attention on).
var reference = map[string][2]float64{
	"8b-q4_k_m": {9584, 260},
	"8b-q4_0":   {11026, 317},
	"1b-q4_k_m": {34456, 871},
}

type record map[string]any

func (r record) f(k string) float64 {
	v, _ := r[k].(float64)
	return v
}

// readRecords reads one model's JSON lines, keyed by name (the last "concurrent" lines are
// kept apart by their session count).
func readRecords(path string) (map[string]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]record{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		name, _ := r["name"].(string)
		if name == "concurrent" {
			name = fmt.Sprintf("concurrent%d", int(r.f("sessions")))
		}
		out[name] = r
	}
	return out, sc.Err()
}

func ratio(v, ref float64) string {
	if ref == 0 || v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", v/ref)
}

// printTable prints one table for the models whose JSON lines are in files (NAME.jsonl).
func printTable(w io.Writer, files []string) error {
	fmt.Fprintln(w, "| model | figure | Kwyre | llama-bench (H100, b10587) | ratio | share of memory bandwidth |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, path := range files {
		label := strings.TrimSuffix(filepath.Base(path), ".jsonl")
		rec, err := readRecords(path)
		if err != nil {
			return err
		}
		ref := reference[label]
		bw := rec["gpu"].f("memory_bandwidth_bytes_per_s")
		bytes := rec["model"].f("bytes")
		share := func(tps float64) string {
			if bw == 0 || tps == 0 {
				return "—"
			}
			// Each decoded token reads every weight once.
			return fmt.Sprintf("%.0f%%", 100*tps*bytes/bw)
		}
		row := func(fig string, v float64, unit string, refv float64, bwShare string) {
			refs := "—"
			if refv > 0 {
				refs = fmt.Sprintf("%.0f", refv)
			}
			fmt.Fprintf(w, "| %s | %s | %.1f %s | %s | %s | %s |\n", label, fig, v, unit, refs, ratio(v, refv), bwShare)
		}
		e, h := rec["engine"], rec["prompt_512"]
		row(fmt.Sprintf("prompt, engine alone (%d tokens)", int(e.f("prompt_tokens"))), e.f("prompt_tokens_per_s"), "tok/s", ref[0], "")
		toks := fmt.Sprintf("%d", int(h.f("prompt_tokens")))
		if hi := int(h.f("prompt_tokens_max")); hi > int(h.f("prompt_tokens")) {
			toks += fmt.Sprintf("–%d", hi)
		}
		row(fmt.Sprintf("prompt, HTTP API (%s tokens), to the first content chunk the client receives", toks), h.f("prompt_tokens_per_s"), "tok/s", ref[0], "")
		if v := h.f("service_prompt_tokens_per_s"); v > 0 {
			row(fmt.Sprintf("prompt, HTTP API, to the first token in the service (its time to first token %.1f ms)", h.f("service_ttft_ms")), v, "tok/s", ref[0], "")
		}
		row("decode, engine alone (128 tokens from an empty cache)", e.f("tokens_per_s"), "tok/s", ref[1], share(e.f("tokens_per_s")))
		row("decode, HTTP streaming (128 tokens after a short prompt)", rec["decode"].f("tokens_per_s"), "tok/s", ref[1], share(rec["decode"].f("tokens_per_s")))
		if o := rec["decode_steady"]; o != nil {
			row("decode, HTTP streaming, steady state (tokens 129–256 of a greedy reply: the same turn to 256 tokens minus to 128)", o.f("tokens_per_s"), "tok/s", ref[1], share(o.f("tokens_per_s")))
		}
		if o := rec["decode_parts"]; o != nil {
			row(fmt.Sprintf("decode, HTTP streaming: the service's µs per token in llama_decode %.0f, waiting for the GPU %.0f, sampling %.0f, and other work", o.f("decode_us"), o.f("wait_us"), o.f("sample_us")),
				o.f("other_us"), "µs", 0, "")
		}
		if o := rec["sampling"]; o != nil {
			row(fmt.Sprintf("sampling one token at temperature 0.8, top-p 0.95, on the host CPU, flat logits (llama.cpp's chain: %.0f µs)", o.f("llama_cpp_us")),
				o.f("kwyre_us"), "µs", 0, "")
			if o.f("kwyre_peaked_us") > 0 {
				row(fmt.Sprintf("the same, peaked logits as a trained model's (llama.cpp's chain: %.0f µs)", o.f("llama_cpp_peaked_us")),
					o.f("kwyre_peaked_us"), "µs", 0, "")
			}
		}
		if o := rec["decode_sampled"]; o != nil {
			row("decode, HTTP streaming, temperature 0.8 and top-p 0.95 (the API's defaults)", o.f("tokens_per_s"), "tok/s", ref[1], share(o.f("tokens_per_s")))
		}
		if o := rec["engine_no_graph_opt"]; o != nil {
			row("decode, engine alone, GGML_CUDA_GRAPH_OPT=0 (the backend's default)", o.f("tokens_per_s"), "tok/s", ref[1], share(o.f("tokens_per_s")))
			same := "no: the replies differ"
			if o["reply_fnv64"] == e["reply_fnv64"] {
				same = "yes"
			}
			fmt.Fprintf(w, "| %s | greedy reply identical with and without the concurrent streams | %s | — | — |  |\n", label, same)
		}
		if p := rec["profile_raw"]; p != nil && p.f("tokens_per_s") > 0 {
			fmt.Fprintf(w, "| %s | decode, engine alone ÷ bare llama_decode loop (same process, interleaved runs) | %.2f | — | — |  |\n",
				label, e.f("tokens_per_s")/p.f("tokens_per_s"))
			row(fmt.Sprintf("decode, bare llama_decode loop as llama-bench's tg (%.0f µs in llama_decode + %.0f µs waiting per token)", p.f("decode_us"), p.f("wait_us")),
				p.f("tokens_per_s"), "tok/s", ref[1], share(p.f("tokens_per_s")))
		}
		l := rec["long_prompt"]
		row(fmt.Sprintf("time to first token, %d-token prompt", int(l.f("prompt_tokens"))), l.f("ttft_ms"), "ms", 0, "")
		fu := rec["follow_up"]
		row(fmt.Sprintf("follow-up turn TTFT (%d of %d prompt tokens cached)", int(fu.f("cached_tokens")), int(fu.f("prompt_tokens"))),
			fu.f("ttft_ms"), "ms", 0, "")
		if k := rec["kv_check"]; k != nil {
			fmt.Fprintf(w, "| %s | KV cache read back from the GPU: non-zero bytes before / after a wipe | %.0f / %.0f of %.0f | — | — |  |\n",
				label, k.f("nonzero_bytes_before_wipe"), k.f("nonzero_bytes_after_wipe"), k.f("kv_bytes"))
		}
		for _, n := range []int{4, 16} {
			c := rec[fmt.Sprintf("concurrent%d", n)]
			if c == nil {
				continue
			}
			row(fmt.Sprintf("aggregate decode, %d sessions (%d errors)", n, int(c.f("errors"))),
				c.f("aggregate_tokens_per_s"), "tok/s", 0, share(c.f("aggregate_tokens_per_s")))
		}
	}
	return nil
}
