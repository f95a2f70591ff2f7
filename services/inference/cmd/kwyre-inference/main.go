// Command kwyre-inference serves a GGUF model through llama.cpp on a
// loopback address: the Kwyre appliance's inference service.
//
//	kwyre-inference -model FILE [-listen 127.0.0.1:8000] [-api-key-file FILE]
//	    [-idle-timeout 1h] [-ctx N] [-gpu-layers N|auto] [-model-sha256 HEX]
//	    [-backend-dir DIR] [-watchdog-state FILE] [-integrity-file FILE] [-slots N]
//
// SIGTERM (or SIGINT) wipes every session and exits 0; SIGUSR1 wipes every
// session and keeps serving.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kwyre/kwyre/services/inference/api"
	"github.com/kwyre/kwyre/services/inference/scrub"
	"github.com/kwyre/kwyre/services/inference/service"
	"github.com/kwyre/kwyre/services/inference/session"
)

func main() {
	// Before the CPU build's exec, so that both builds start with it.
	if err := scrub.EnsureFreedClobbered(); err != nil {
		fmt.Fprintf(os.Stderr, "kwyre-inference: %v: freed memory will not be overwritten\n", err)
	}
	execCPUBuild()
	os.Exit(run())
}

func run() int {
	// Before anything holds plaintext: no core dumps, no ptrace by peers,
	// memory locked where permitted.
	memory, err := harden()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kwyre-inference: %v\n", err)
		return 1
	}

	var o service.Options
	lim := api.DefaultLimits()
	flag.StringVar(&o.Model, "model", "", "GGUF model `file`")
	flag.StringVar(&o.Listen, "listen", "127.0.0.1:8000", "loopback `address` to listen on")
	flag.StringVar(&o.APIKeyFile, "api-key-file", "", "API key `file` (mode 0600 or stricter); created with a random key if missing; empty = a new private temporary file")
	flag.DurationVar(&o.IdleTimeout, "idle-timeout", time.Hour, "wipe a session idle this long")
	flag.IntVar(&o.Ctx, "ctx", 0, "context size in tokens per slot (0 = min(4096, the model's training context))")
	flag.StringVar(&o.GPULayers, "gpu-layers", "auto", "layers to offload to the GPU: a number, or auto")
	flag.StringVar(&o.ModelSHA256, "model-sha256", "", "refuse a model whose SHA-256 is not this `hex`")
	flag.StringVar(&o.BackendDir, "backend-dir", "", "`folder` with llama.cpp's GPU backends (its path must contain lib/ollama)")
	flag.StringVar(&o.WatchdogState, "watchdog-state", "", "the watchdog's state.json, for /audit")
	flag.DurationVar(&o.WatchdogInterval, "watchdog-interval", 5*time.Second, "the watchdog's scan interval (state older than two is stale)")
	flag.StringVar(&o.IntegrityFile, "integrity-file", "", "init's integrity.json, for /audit")
	flag.IntVar(&o.Slots, "slots", 2, "requests generated at the same time (each its own KV cache)")
	flag.IntVar(&o.Threads, "threads", 0, "CPU threads for llama.cpp (0 = all cores)")
	flag.StringVar(&o.FlashAttention, "flash-attn", "auto", "flash attention: auto (where the backend has it), on or off")
	flag.Int64Var(&lim.MaxBodyBytes, "max-body-bytes", lim.MaxBodyBytes, "largest request body")
	flag.IntVar(&lim.MaxMessages, "max-messages", lim.MaxMessages, "most messages in one request")
	flag.IntVar(&lim.MaxContentBytes, "max-content-bytes", lim.MaxContentBytes, "largest message content")
	flag.IntVar(&lim.MaxTokens, "max-tokens", 0, "largest max_tokens (0 = the context size)")
	flag.IntVar(&lim.MaxSessions, "max-sessions", lim.MaxSessions, "most live sessions")
	flag.DurationVar(&lim.QueueTimeout, "queue-timeout", lim.QueueTimeout, "longest wait for a free slot before 503")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "kwyre-inference: unexpected arguments %q\n", flag.Args())
		return 2
	}
	o.Limits = lim
	o.MemoryLocked = memory

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o.Logger = log
	log.Info("starting", "memory", memory, "dumpable", false, "cpu_build", cpuBuildName(), "binding", bindingBuild(),
		"freed_memory_overwritten", scrub.FreedClobbered())

	// Signals are caught from the start: a SIGTERM while the model loads
	// still wipes and exits cleanly.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)

	svc, err := service.Start(context.Background(), o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kwyre-inference: %v\n", err)
		return 1
	}
	svc.PrintKeyPath(os.Stdout)
	fmt.Fprintf(os.Stdout, "kwyre-inference: listening on http://%s\n", svc.Addr())

	loaded := make(chan error, 1)
	go func() { loaded <- svc.Load() }()
	for {
		select {
		case err := <-loaded:
			if err != nil {
				fmt.Fprintf(os.Stderr, "kwyre-inference: %v\n", err)
				svc.Close(time.Second)
				return 1
			}
			fmt.Fprintln(os.Stdout, "kwyre-inference: ready")
			loaded = nil
		case err := <-svc.Served():
			fmt.Fprintf(os.Stderr, "kwyre-inference: http server stopped: %v\n", err)
			svc.Close(time.Second)
			return 1
		case sig := <-sigs:
			if sig == syscall.SIGUSR1 {
				svc.WipeAll(session.ReasonSignal)
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			if err := svc.Close(5 * time.Second); err != nil {
				log.Warn("shutdown did not finish in time", "err", err)
			}
			log.Info("all sessions wiped; exiting")
			return 0
		}
	}
}
