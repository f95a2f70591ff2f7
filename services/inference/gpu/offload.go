package gpu

import (
	"fmt"
	"os"
	"strconv"
)

// ModelShape is what the offload plan needs to know of a model.
type ModelShape struct {
	FileBytes uint64 // the GGUF's size: weights dominate it
	Layers    int    // repeating blocks
	EmbdKV    int    // n_embd_head_k * n_head_kv: one token's K (and V) width per layer
	// GPU memory each context takes for a prompt beyond its KV cache and
	// llama.cpp's compute buffer (PromptScratch).
	SlotScratch uint64
}

// PromptCuBLAS says whether a prompt's batch goes through cuBLAS rather than
// MMQ on a GPU of compute capability cc (major*10+minor): the rule of
// cuda-patches/0004, Hopper by default, GGML_CUDA_PROMPT_CUBLAS overriding.
func PromptCuBLAS(cc int) bool {
	if v, ok := os.LookupEnv("GGML_CUDA_PROMPT_CUBLAS"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		return err == nil && n > 0
	}
	return cc >= 90 && cc < 100
}

// PromptScratch is what a context's memory pool grows to for a prompt where
// it goes through cuBLAS: the FP16 copy of the largest block weight
// (elements), and room for the batch's FP16 copy and the pool's rounding.
func PromptScratch(largestMatrix uint64) uint64 { return 2*largestMatrix + 32<<20 }

// KVBytes is the f16 KV cache for ctx tokens in each of slots contexts.
func (m ModelShape) KVBytes(ctx, slots int) uint64 {
	return uint64(2*2*m.EmbdKV) * uint64(m.Layers) * uint64(ctx) * uint64(slots)
}

// PlanLayers chooses how many layers to offload (-gpu-layers auto): every layer whose
// weights fit in free memory after the KV cache, compute buffers and a safety margin,
// and all of them (plus the output layer) when the whole model fits.
func PlanLayers(free uint64, m ModelShape, ctx, slots int) (layers int, why string) {
	if free == 0 || m.Layers <= 0 {
		return 0, "no GPU memory free: all layers on CPU"
	}
	kv := m.KVBytes(ctx, slots)
	// Compute buffers and CUDA context: about 5% of the weights plus 512 MiB.
	reserve := m.FileBytes/20 + 512<<20 + uint64(slots)*m.SlotScratch
	if free <= kv+reserve {
		return 0, fmt.Sprintf("%.1f GiB free is less than the KV cache (%.1f GiB) and buffers: all layers on CPU",
			gib(free), gib(kv))
	}
	room := free - kv - reserve
	perLayer := m.FileBytes / uint64(m.Layers+1) // the output layer counts as one more
	if m.FileBytes <= room {
		return m.Layers + 1, fmt.Sprintf("all %d layers fit (%.1f GiB weights, %.1f GiB KV, %.1f GiB free)",
			m.Layers+1, gib(m.FileBytes), gib(kv), gib(free))
	}
	n := int(room / perLayer)
	if n > m.Layers {
		n = m.Layers
	}
	return n, fmt.Sprintf("%d of %d layers fit (%.1f GiB weights, %.1f GiB KV, %.1f GiB free)",
		n, m.Layers+1, gib(m.FileBytes), gib(kv), gib(free))
}

func gib(b uint64) float64 { return float64(b) / (1 << 30) }
