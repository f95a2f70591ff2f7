package engine

import "github.com/ollama/ollama/llama"

// backendInit loads ggml's CPU and GPU backends through the binding, which
// also compiles llama.cpp and ggml into the program.
func backendInit() { llama.BackendInit() }
