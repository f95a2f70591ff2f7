// Package engine runs a GGUF model through llama.cpp for the inference
// service: one model shared by N slots, each slot its own llama_context (so
// wiping one conversation's KV cache never touches another's), sampling in
// C on the context's logits, and plaintext only in buffers that are wiped
// after use. It is the only package that talks to llama.cpp, so the binding
// can be swapped here alone.
package engine

/*
#include <stdlib.h>
#include "kwyre_llama.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"

	"github.com/kwyre/kwyre/services/inference/gguf"
)

// Config says what to load and how.
type Config struct {
	ModelPath   string
	ContextSize int // tokens per slot; 0 = the model's training context, at most 4096
	GPULayers   int // layers to offload; -1 = all
	Slots       int // parallel sequences, each its own context; 0 = 4
	Threads     int // CPU threads per slot; 0 = runtime.NumCPU()
	BackendDir  string
	BatchSize   int // tokens per llama_decode of a prompt; 0 = 512
	// FlashAttention is "auto" (or ""): on where the backend supports it;
	// "on" or "off" force it.
	FlashAttention string
	// KVProbe makes each slot record its KV cache tensors so KVNonZero can
	// read them back (tests and qa/gpu; the service leaves it off).
	KVProbe bool
	// SkipCheck skips gguf.Check because the caller has just run it.
	SkipCheck bool
	// EmbdOnGPU puts the token embedding on the GPU with the layers (when
	// any are offloaded and the GPU can look rows up in its type), where
	// llama.cpp keeps it in host memory.
	EmbdOnGPU bool
	// Warmup is "auto" (or ""): when every layer is on the GPU, run a full
	// batch and a token through each slot at load and wipe it, so that the
	// backend's first-use costs do not fall on a user's first turn; "on" or
	// "off" force it.
	Warmup string
}

// flashAttn maps Config.FlashAttention to llama.cpp's enum.
func flashAttn(v string) (C.int32_t, error) {
	switch v {
	case "", "auto":
		return C.LLAMA_FLASH_ATTN_TYPE_AUTO, nil
	case "on":
		return C.LLAMA_FLASH_ATTN_TYPE_ENABLED, nil
	case "off":
		return C.LLAMA_FLASH_ATTN_TYPE_DISABLED, nil
	}
	return 0, fmt.Errorf("flash attention %q: want auto, on or off", v)
}

// Info describes the loaded model (metadata only).
type Info struct {
	Arch        string
	Name        string
	NCtxTrain   int
	NCtx        int // per slot
	NVocab      int
	NLayer      int
	NSlots      int
	LayersOnGPU int
	Backend     string // "CPU", "CUDA", ...
	// GraphOpt: the CUDA backend runs independent branches of each
	// token's graph on concurrent streams (GGML_CUDA_GRAPH_OPT).
	GraphOpt bool
	// EmbdOnGPU: the token embedding lives in GPU memory (Config.EmbdOnGPU).
	EmbdOnGPU  bool
	ModelBytes int64 // file size
	LoadTime   time.Duration
	WarmupTime time.Duration // part of LoadTime: Config.Warmup's runs
	// ChatTemplate is "model" (the model's own), the name of the built-in
	// template used instead, or "" (none fits: RenderChat fails).
	ChatTemplate string
}

// Engine is a loaded model and its slots.
type Engine struct {
	model *C.struct_llama_model
	vocab *C.struct_llama_vocab
	tmpl  *C.char // the model's chat template, or a built-in name; nil if none fits
	// tmplOwned: tmpl was allocated here (a built-in name), not the model's.
	tmplOwned bool
	info      Info
	// pipelined: layers run on a GPU, so llama_decode returns before the
	// device is done and the next token's decode is queued before the
	// current piece is streamed.
	pipelined bool

	mu      sync.Mutex
	cond    *sync.Cond // signalled whenever a slot is released
	slots   []*Slot
	waiters []*waiter // FIFO
	closed  bool
	tick    uint64 // last-use clock for picking which idle slot to take over
}

// Errors of Load and Acquire.
var (
	ErrClosed   = errors.New("engine closed")
	ErrNotGGUF  = errors.New("not a GGUF file")
	ErrLoad     = errors.New("llama.cpp could not load the model")
	ErrNoMemory = errors.New("llama.cpp could not create a context")
)

const (
	defaultSlots = 4
	defaultBatch = 512
	defaultCtx   = 4096
	allLayers    = 999 // llama.cpp's "every layer" (it clamps to n_layer+1)
)

var backendOnce sync.Once

// initBackend loads ggml's backends once per process. The binding reads
// OLLAMA_LIBRARY_PATH for GPU backends and accepts only a folder whose path
// contains lib/ollama (or the executable's folder).
func initBackend(dir string) {
	backendOnce.Do(func() {
		if dir != "" {
			os.Setenv("OLLAMA_LIBRARY_PATH", dir)
		}
		C.kw_log_quiet()
		backendInit()
		C.kw_malloc_perturb()
		graphOpt = enableGraphOpt()
	})
}

// graphOpt: ggml's CUDA backend runs independent graph branches (the Q, K
// and V projections, say) on concurrent streams; see enableGraphOpt.
var graphOpt bool

// enableGraphOpt turns on the pinned ggml CUDA backend's graph optimization
// (GGML_CUDA_GRAPH_OPT=1, off by default in this version) when exactly one
// CUDA device is present, as the backend supports it only on one GPU (it
// aborts otherwise). On the H100 it cut an 8B model's per-token GPU time
// from 3.31 to 3.03 ms (qa/gpu/README.md). The backend reads the variable at
// its first graph, so this runs before any context computes; a value the
// operator set wins.
func enableGraphOpt() bool {
	if v, ok := os.LookupEnv("GGML_CUDA_GRAPH_OPT"); ok {
		return v == "1"
	}
	var name [64]C.char
	if C.kw_gpu_devices(&name[0], C.size_t(len(name))) != 1 || C.GoString(&name[0]) != "CUDA" {
		return false
	}
	os.Setenv("GGML_CUDA_GRAPH_OPT", "1")
	return true
}

// Load checks and loads the model, then creates cfg.Slots contexts.
// progress (may be nil) gets the loading progress from 0 to 1.
func Load(cfg Config, progress func(float32)) (*Engine, error) {
	start := time.Now()
	if cfg.Slots <= 0 {
		cfg.Slots = defaultSlots
	}
	if cfg.Threads <= 0 {
		cfg.Threads = runtime.NumCPU()
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = defaultBatch
	}
	if cfg.ContextSize < 0 {
		return nil, fmt.Errorf("context size %d: must be ≥ 0", cfg.ContextSize)
	}
	fa, err := flashAttn(cfg.FlashAttention)
	if err != nil {
		return nil, err
	}
	switch cfg.Warmup {
	case "", "auto", "on", "off":
	default:
		return nil, fmt.Errorf("warm-up %q: want auto, on or off", cfg.Warmup)
	}
	st, err := checkFile(cfg.ModelPath, cfg.SkipCheck)
	if err != nil {
		return nil, err
	}
	initBackend(cfg.BackendDir)

	layers := cfg.GPULayers
	if layers < 0 {
		layers = allLayers
	}
	var h cgo.Handle
	if progress != nil {
		h = cgo.NewHandle(progress)
		defer h.Delete()
	}
	cpath := C.CString(cfg.ModelPath)
	defer C.free(unsafe.Pointer(cpath))
	embdType, embdShape := C.int32_t(-1), [2]uint64{}
	if cfg.EmbdOnGPU && layers > 0 {
		t, err := tokenEmbd(cfg.ModelPath)
		if err != nil {
			return nil, err
		}
		embdType, embdShape = C.int32_t(t.Type), [2]uint64{t.Shape[0], t.Shape[1]}
	}
	var embdOnGPU C.bool
	m := C.kw_load_model(cpath, C.int32_t(layers), embdType, C.int64_t(embdShape[0]), C.int64_t(embdShape[1]),
		&embdOnGPU, C.uintptr_t(h))
	if m == nil {
		return nil, fmt.Errorf("load %s: %w", cfg.ModelPath, ErrLoad)
	}
	e := &Engine{model: m, vocab: C.llama_model_get_vocab(m)}
	e.cond = sync.NewCond(&e.mu)
	e.info = Info{
		Arch:       e.meta("general.architecture"),
		Name:       e.meta("general.name"),
		NCtxTrain:  int(C.llama_model_n_ctx_train(m)),
		NVocab:     int(C.llama_vocab_n_tokens(e.vocab)),
		NLayer:     int(C.llama_model_n_layer(m)),
		NSlots:     cfg.Slots,
		ModelBytes: st.Size(),
		Backend:    "CPU",
	}
	var dev [64]C.char
	if n := C.kw_gpu_devices(&dev[0], C.size_t(len(dev))); n > 0 {
		e.info.Backend = C.GoString(&dev[0])
		e.info.GraphOpt = graphOpt
		e.info.EmbdOnGPU = bool(embdOnGPU)
		e.info.LayersOnGPU = min(layers, e.info.NLayer+1)
	}
	e.pipelined = e.info.LayersOnGPU > 0
	nctx := cfg.ContextSize
	if nctx == 0 {
		nctx = defaultCtx
		if t := e.info.NCtxTrain; t > 0 && t < nctx {
			nctx = t
		}
	}
	// Every layer and the output layer on the GPU, or forced.
	warm := cfg.Warmup == "on" || cfg.Warmup != "off" && e.info.LayersOnGPU > e.info.NLayer
	e.tmpl, e.info.ChatTemplate = e.chatTemplate()
	for i := 0; i < cfg.Slots; i++ {
		s, err := newSlot(e, nctx, cfg.BatchSize, cfg.Threads, fa, cfg.KVProbe)
		if err != nil {
			e.free()
			return nil, fmt.Errorf("slot %d of %d (ctx %d): %w", i+1, cfg.Slots, nctx, err)
		}
		e.slots = append(e.slots, s)
	}
	e.info.NCtx = int(C.kw_slot_n_ctx(e.slots[0].c))
	if warm {
		t := time.Now()
		for i, s := range e.slots {
			if rc := C.kw_slot_warmup(s.c); rc != 0 {
				e.free()
				return nil, fmt.Errorf("warm-up of slot %d: llama_decode returned %d", i+1, rc)
			}
		}
		e.info.WarmupTime = time.Since(t)
	}
	e.info.LoadTime = time.Since(start)
	if progress != nil {
		progress(1)
	}
	return e, nil
}

// tokenEmbd describes the model's token embedding tensor.
func tokenEmbd(path string) (gguf.TensorInfo, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return gguf.TensorInfo{}, err
	}
	for _, t := range f.Tensors {
		if t.Name == "token_embd.weight" && len(t.Shape) == 2 {
			return t, nil
		}
	}
	return gguf.TensorInfo{}, fmt.Errorf("model %s: no two-dimensional token_embd.weight", path)
}

// checkFile gives a clear error for a missing, unreadable or non-GGUF file
// (and, unless skipped, for the malformed metadata llama.cpp would trust)
// before llama.cpp sees it.
func checkFile(path string, skipCheck bool) (os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("model %s: not a regular file", path)
	}
	var magic [4]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil || string(magic[:]) != "GGUF" {
		return nil, fmt.Errorf("model %s: %w", path, ErrNotGGUF)
	}
	if !skipCheck {
		if _, err := gguf.Check(path); err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
	}
	return st, nil
}

//export kwyreProgress
func kwyreProgress(p C.float, h C.uintptr_t) C.bool {
	if h != 0 {
		cgo.Handle(h).Value().(func(float32))(float32(p))
	}
	return true
}

// meta reads a metadata string of the model (never content).
func (e *Engine) meta(key string) string {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var buf [256]C.char
	if C.kw_meta(e.model, ck, &buf[0], C.size_t(len(buf))) < 0 {
		return ""
	}
	return C.GoString(&buf[0])
}

// Info describes the loaded model.
func (e *Engine) Info() Info { return e.info }

// Close ends every generation in flight, waits for their slots, wipes and
// frees every context and then the model. Acquire fails afterwards.
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	for _, w := range e.waiters {
		close(w.ch)
	}
	e.waiters = nil
	for _, s := range e.slots {
		if s.busy {
			C.kw_abort_set(s.c, C.KW_ABORT_WIPE)
		}
	}
	for e.anyBusy() {
		e.cond.Wait()
	}
	e.mu.Unlock()
	e.free()
}

func (e *Engine) anyBusy() bool {
	for _, s := range e.slots {
		if s.busy {
			return true
		}
	}
	return false
}

func (e *Engine) free() {
	// On a GPU backend, llama_free crashes in the vendored llama.cpp: ~llama_context
	// frees its backends before ggml_backend_sched_free calls into them (measured on
	// CUDA, H100). There the contexts and the model stay until the process exits; every
	// KV buffer has been zeroed by then.
	keep := e.info.Backend != "" && e.info.Backend != "CPU"
	for _, s := range e.slots {
		s.free(keep)
	}
	e.slots = nil
	if e.tmpl != nil && e.tmplOwned {
		C.free(unsafe.Pointer(e.tmpl))
	}
	e.tmpl = nil
	if e.model != nil && !keep {
		C.llama_model_free(e.model)
	}
	e.model = nil
}
