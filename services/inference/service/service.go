// Package service assembles the inference service: it checks the model,
// opens the loopback listener, serves the API while llama.cpp loads the
// model, and wipes everything on request. cmd/kwyre-inference is a thin
// wrapper around it; the integration tests drive it in-process.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kwyre/kwyre/services/inference/api"
	"github.com/kwyre/kwyre/services/inference/engine"
	"github.com/kwyre/kwyre/services/inference/gpu"
	"github.com/kwyre/kwyre/services/inference/secbuf"
	"github.com/kwyre/kwyre/services/inference/session"
)

// Options are the service's settings (the command's flags).
type Options struct {
	Model            string
	Listen           string // host:port, loopback only
	APIKeyFile       string // "" = generate one in a private temporary directory
	IdleTimeout      time.Duration
	Ctx              int    // tokens per slot; 0 = min(4096, the model's training context)
	GPULayers        string // "auto" or a number
	ModelSHA256      string // pinned hash, or ""
	BackendDir       string // llama.cpp GPU backends (OLLAMA_LIBRARY_PATH)
	WatchdogState    string
	WatchdogInterval time.Duration
	IntegrityFile    string // init's integrity.json, or ""
	Slots            int
	Threads          int
	FlashAttention   string // auto, on or off
	Limits           api.Limits
	Logger           *slog.Logger // metadata only; nil = discard
	MemoryLocked     string       // what mlockall achieved, for /audit
}

// Service is a running inference service.
type Service struct {
	opts    Options
	log     *slog.Logger
	srv     *api.Server
	KeyPath string // the API key file used (or created)
	Created bool   // the key file was created at start

	served chan error
	check  *modelCheck
	probe  *gpu.Probe
	gpus   gpu.System // NVML's view at start

	mu  sync.Mutex
	eng *engine.Engine
}

// Start checks the options and the model file, opens the loopback
// listener and starts serving (/health answers "loading"). Call Load next.
func Start(ctx context.Context, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8000"
	}
	if o.Slots <= 0 {
		o.Slots = 2
	}
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Hour
	}
	if o.Limits == (api.Limits{}) {
		o.Limits = api.DefaultLimits()
	}
	if o.GPULayers == "" {
		o.GPULayers = "auto"
	}
	if _, err := parseGPULayers(o.GPULayers); err != nil {
		return nil, err
	}
	if o.ModelSHA256 != "" {
		sum, err := ParseSHA256(o.ModelSHA256)
		if err != nil {
			return nil, err
		}
		o.ModelSHA256 = sum
	}
	if o.Model == "" {
		return nil, errors.New("no model: pass -model FILE (a GGUF file)")
	}
	if _, err := os.Stat(o.Model); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	s := &Service{opts: o, log: o.Logger, served: make(chan error, 1)}
	keyPath, digest, created, err := api.LoadOrCreateKey(o.APIKeyFile)
	if err != nil {
		return nil, err
	}
	s.KeyPath, s.Created = keyPath, created

	// The NVML session stays open (Close ends it): /health, /audit and
	// /metrics read the GPUs' state when asked.
	s.probe = gpu.Open("")
	s.gpus = s.probe.Snapshot()
	s.log.Info("gpu probe", "result", s.gpus.String())
	gpuName := s.gpus.Summary()

	storage := "RAM-only: each session encrypted (XChaCha20-Poly1305, per-session 256-bit key in a no-dump page); " + o.MemoryLocked
	if n := secbuf.UnlockedKeys(); n > 0 {
		storage += fmt.Sprintf("; %d session keys not mlocked", n)
	}
	s.srv = api.New(api.Config{
		Key:                 digest,
		Limits:              o.Limits,
		ModelName:           filepath.Base(o.Model),
		GPU:                 gpuName,
		GPUState:            func() gpu.System { return s.probe.Recent(gpuMaxAge) },
		IdleTimeout:         o.IdleTimeout,
		WeightIntegrity:     "pending: model not checked yet",
		ConversationStorage: storage,
		WatchdogStateFile:   o.WatchdogState,
		WatchdogInterval:    o.WatchdogInterval,
		Logger:              o.Logger,
	})
	ln, err := api.ListenLoopback(ctx, o.Listen)
	if err != nil {
		s.probe.Close()
		return nil, err
	}
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

// Server is the HTTP layer.
func (s *Service) Server() *api.Server { return s.srv }

// Addr is the bound listener address.
func (s *Service) Addr() string {
	for i := 0; i < 100 && s.srv.Addr() == ""; i++ {
		time.Sleep(time.Millisecond)
	}
	return s.srv.Addr()
}

// Served returns Serve's result once the HTTP server stops.
func (s *Service) Served() <-chan error { return s.served }

// Load checks the model (layer L4) and loads it into llama.cpp, reporting
// progress on /health; afterwards chat requests are served.
func (s *Service) Load() error {
	err := s.load()
	if err != nil {
		s.srv.SetFailed()
	}
	return err
}

func (s *Service) load() error {
	o := s.opts
	start := time.Now()
	mc, err := checkModel(o.Model, o.ModelSHA256)
	if err != nil {
		return err
	}
	if o.IntegrityFile != "" {
		if mc.integrity, err = readIntegrity(o.IntegrityFile); err != nil {
			return err
		}
	}
	s.check = mc
	var report any // a nil *Summary would marshal as null
	if mc.integrity != nil {
		report = mc.integrity
	}
	s.srv.SetWeightIntegrity(mc.weightIntegrity(), report)
	s.log.Info("model checked", "arch", mc.info.Arch, "layers", mc.info.BlockCount, "vocab", mc.info.VocabSize,
		"bytes", mc.info.Size, "sha256_pinned", mc.sha256 != "", "boot_manifest", mc.integrity != nil)

	ctxSize := o.Ctx
	if ctxSize <= 0 {
		ctxSize = 4096
		if t := int(mc.info.ContextLength); t > 0 && t < ctxSize {
			ctxSize = t
		}
	}
	layers, why, gpuName := s.planGPU(mc, ctxSize)
	s.log.Info("gpu offload", "layers", layers, "why", why)
	if o.BackendDir != "" {
		os.Setenv("OLLAMA_LIBRARY_PATH", o.BackendDir)
	}
	eng, err := engine.Load(engine.Config{
		ModelPath:      o.Model,
		ContextSize:    ctxSize,
		GPULayers:      layers,
		Slots:          o.Slots,
		Threads:        o.Threads,
		BackendDir:     o.BackendDir,
		FlashAttention: o.FlashAttention,
		SkipCheck:      true, // checkModel just ran gguf.Check
	}, s.srv.SetProgress)
	if err != nil {
		return fmt.Errorf("load model %s: %w", o.Model, err)
	}
	s.mu.Lock()
	s.eng = eng
	s.mu.Unlock()
	took := time.Since(start)
	info := eng.Info()
	if info.NCtx > 0 {
		ctxSize = info.NCtx
	}
	gpuLabel := "none"
	if info.Backend != "" && !strings.EqualFold(info.Backend, "CPU") {
		gpuLabel = fmt.Sprintf("%s (%s, %d layers)", gpuName, info.Backend, info.LayersOnGPU)
	} else if layers > 0 {
		s.log.Warn("gpu fallback: running on the CPU", "why", noBackendReason(o.BackendDir, s.gpus))
	}
	s.srv.SetEngine(llama{e: eng, ctx: ctxSize}, api.EngineInfo{GPU: gpuLabel, LayersOnGPU: info.LayersOnGPU}, took)
	s.log.Info("model ready", "seconds", took.Seconds(), "ctx", ctxSize, "slots", info.NSlots,
		"backend", info.Backend, "layers_on_gpu", info.LayersOnGPU, "cuda_graph_opt", info.GraphOpt,
		"warmup_seconds", info.WarmupTime.Seconds())
	return nil
}

func parseGPULayers(v string) (int, error) {
	if v == "auto" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("-gpu-layers: want auto or a number ≥ 0")
	}
	return n, nil
}

// gpuMaxAge bounds how often the API's answers make the service query the
// driver, however often they are polled.
const gpuMaxAge = time.Second

// noBackendReason says why layers meant for the GPU run on the CPU: what
// -backend-dir holds, and what the driver said.
func noBackendReason(dir string, sys gpu.System) string {
	why := "no -backend-dir: llama.cpp looked for GPU backends beside the program only"
	if dir != "" {
		why = "-backend-dir " + dir + " holds no libggml-cuda.so (make cuda builds it)"
		if libs, _ := filepath.Glob(filepath.Join(dir, "libggml-cuda*.so*")); len(libs) > 0 {
			why = filepath.Base(libs[0]) + " in " + dir + " did not load or found no device (a missing CUDA runtime library, or a driver older than its CUDA release)"
		}
	}
	if len(sys.Devices) == 0 {
		why += "; NVML: " + sys.Unavailable
	}
	return why
}

// planGPU decides how many layers go to the GPU: the flag's number, or for
// auto what fits in the first GPU's free memory.
func (s *Service) planGPU(mc *modelCheck, ctxSize int) (int, string, string) {
	n, _ := parseGPULayers(s.opts.GPULayers)
	sys := s.gpus
	name := sys.Summary()
	if n >= 0 {
		return n, "set by -gpu-layers", name
	}
	if len(sys.Devices) == 0 {
		why := "no GPU: all layers on CPU"
		if sys.Unavailable != "" {
			why = "no GPU (" + sys.Unavailable + "): all layers on CPU"
		}
		return 0, why, name
	}
	shape := gpu.ModelShape{FileBytes: mc.info.Size, Layers: int(mc.info.BlockCount)}
	if mc.info.HeadCount > 0 {
		shape.EmbdKV = int(mc.info.EmbeddingLen / mc.info.HeadCount * mc.info.HeadCountKV)
	}
	if gpu.PromptCuBLAS(sys.Devices[0].ComputeCapability) {
		shape.SlotScratch = gpu.PromptScratch(mc.info.LargestBlockMatrix)
	}
	layers, why := gpu.PlanLayers(sys.Devices[0].MemoryFree, shape, ctxSize, s.opts.Slots)
	return layers, why, name
}

// WipeAll wipes every session and KV cache and keeps serving (SIGUSR1).
func (s *Service) WipeAll(reason string) int { return s.srv.WipeAll(reason) }

// Close wipes everything, stops the HTTP server and frees the model
// (SIGTERM). It waits at most timeout for requests in flight.
func (s *Service) Close(timeout time.Duration) error {
	// Wiping first ends every generation in flight, so Shutdown is quick.
	s.srv.WipeAll(session.ReasonShutdown)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.mu.Lock()
	eng := s.eng
	s.eng = nil
	s.mu.Unlock()
	if eng != nil {
		eng.WipeAll()
		eng.Close()
	}
	s.probe.Close()
	return err
}

// PrintKeyPath tells the user where a generated key went.
func (s *Service) PrintKeyPath(w io.Writer) {
	if s.Created {
		fmt.Fprintf(w, "kwyre-inference: API key written to %s (mode 0600)\n", s.KeyPath)
	}
}

// Engine returns the loaded engine (nil while loading), for benchmarks.
func (s *Service) Engine() *engine.Engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eng
}
