// Package llamacheck holds the tests that load the generated models with
// llama.cpp itself (through github.com/ollama/ollama/llama): the demo
// model's exact reply, generation with tiny, the real-model shapes, and
// agreement between llama.cpp and gguf.Check. They live apart from package
// testmodel so the generator's own tests build without llama.cpp's cgo.
package llamacheck
