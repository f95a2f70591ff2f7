package testmodel

import (
	"math/bits"
	"strings"
)

// DemoReply is what the demo model answers to any chat prompt under greedy
// decoding, followed by <|im_end|>.
const DemoReply = "Kwyre demo model: the appliance works. Boot it with your own GGUF model to chat."

// demoPieces splits DemoReply into tokens with unique texts, so a bigram
// chain (each token predicts the next) spells it out.
var demoPieces = func() []string {
	words := strings.Split(DemoReply, " ")
	pieces := make([]string, len(words))
	for i, w := range words {
		if i > 0 {
			w = " " + w
		}
		pieces[i] = w
	}
	return pieces
}()

// demoLogit is the logit the demo's output matrix gives the next token of
// the chain; every other token gets 0, so even temperature 1 picks it
// (p(other) < vocab * e^-64).
const demoLogit = 64

// hadamard returns row i of the Sylvester Hadamard matrix of size n (a power
// of two): entries ±1, distinct rows exactly orthogonal.
func hadamard(i, n int) []float32 {
	row := make([]float32, n)
	for j := range row {
		if bits.OnesCount(uint(i&j))%2 == 0 {
			row[j] = 1
		} else {
			row[j] = -1
		}
	}
	return row
}

// demoChain lists the token ids of the chain: "\n" (the end of every ChatML
// generation prompt), the reply's pieces, then <|im_end|>.
func demoChain(v *vocab) []int {
	chain := []int{v.id(encodeBytes("\n"))}
	for _, p := range demoPieces {
		chain = append(chain, v.id(encodeBytes(p)))
	}
	return append(chain, v.id(TokenIMEnd))
}
