package testmodel

import (
	"fmt"
	"strings"

	"github.com/kwyre/kwyre/services/inference/gguf"
)

// ChatTemplate is the ChatML Jinja template; llama.cpp recognises it as "chatml".
const ChatTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

// Special tokens of the generated vocabularies.
const (
	TokenEndOfText = "<|endoftext|>"
	TokenIMStart   = "<|im_start|>"
	TokenIMEnd     = "<|im_end|>"
)

// byteToRune is GPT-2's byte-to-unicode mapping: printable Latin-1 bytes map
// to themselves, the rest to U+0100 onwards, so every token text is printable.
var byteToRune = func() [256]rune {
	var m [256]rune
	next := rune(256)
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xa1 <= b && b <= 0xac) || (0xae <= b && b <= 0xff) {
			m[b] = rune(b)
		} else {
			m[b] = next
			next++
		}
	}
	return m
}()

// encodeBytes maps raw text to its byte-level BPE form ("Ġthe" for " the").
func encodeBytes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteToRune[s[i]])
	}
	return b.String()
}

// mergeWords are the words whose byte-level BPE merges every vocabulary
// carries, so ordinary English text tokenizes into multi-byte tokens.
var mergeWords = []string{
	"the", " the", " a", " and", " of", " to", " in", " is", " it", " you", " that",
	" for", " on", " with", " as", " was", " this", " be", " are", " have", " not",
	" can", " what", " how", " your", " my", " me", " we", " do", " hello", " Hello",
	"Hello", "hello", " world", " model", " chat", " appliance", " works", " Boot",
	" own", " GGUF", " demo", "Kwyre", " Kwyre", " private", " local", " answer",
	" question", " please", " thanks", " yes", " no", "ing", "er", "ed", " I", "I",
	" user", " assistant", "user", "assistant", "system", " system", "  ", "\n\n",
}

// vocab is a byte-level BPE vocabulary as llama.cpp's "gpt2" tokenizer reads it.
type vocab struct {
	tokens []string
	types  []int32
	merges []string
	index  map[string]int
}

func (v *vocab) add(text string, typ int32) int {
	if id, ok := v.index[text]; ok {
		return id
	}
	v.index[text] = len(v.tokens)
	v.tokens = append(v.tokens, text)
	v.types = append(v.types, typ)
	return len(v.tokens) - 1
}

// buildVocab makes the vocabulary: 256 byte tokens, the merges of
// mergeWords (each merge's result is a token), the demo reply's pieces,
// generated filler tokens up to size (0 = no filler), and the ChatML special
// tokens as the last three ids.
func buildVocab(size int) (*vocab, error) {
	v := &vocab{index: map[string]int{}}
	for b := 0; b < 256; b++ {
		v.add(string(byteToRune[b]), gguf.TokenNormal)
	}
	merged := map[string]bool{}
	for _, w := range mergeWords {
		runes := []rune(encodeBytes(w))
		left := string(runes[0])
		for _, r := range runes[1:] {
			m := left + " " + string(r)
			left += string(r)
			if !merged[m] {
				merged[m] = true
				v.merges = append(v.merges, m)
			}
			v.add(left, gguf.TokenNormal)
		}
	}
	for _, p := range demoPieces {
		v.add(encodeBytes(p), gguf.TokenNormal)
	}
	specials := []string{TokenEndOfText, TokenIMStart, TokenIMEnd}
	if size > 0 {
		if len(v.tokens)+len(specials) > size {
			return nil, fmt.Errorf("vocabulary of %d tokens does not fit in %d", len(v.tokens)+len(specials), size)
		}
		for i := 0; len(v.tokens) < size-len(specials); i++ {
			v.add(fmt.Sprintf("[PAD%d]", i), gguf.TokenNormal)
		}
	}
	for _, s := range specials {
		v.add(s, gguf.TokenControl)
	}
	return v, nil
}

func (v *vocab) id(text string) int { return v.index[text] }

// metadata is the tokenizer's part of the GGUF metadata.
func (v *vocab) metadata() []gguf.KV {
	scores := make([]float32, len(v.tokens))
	return []gguf.KV{
		{Key: gguf.KeyTokenizerModel, Value: "gpt2"},
		{Key: gguf.KeyTokenizerPre, Value: "default"},
		{Key: gguf.KeyTokens, Value: v.tokens},
		{Key: gguf.KeyScores, Value: scores},
		{Key: gguf.KeyTokenType, Value: v.types},
		{Key: gguf.KeyMerges, Value: v.merges},
		{Key: gguf.KeyBOS, Value: uint32(v.id(TokenEndOfText))},
		{Key: gguf.KeyEOS, Value: uint32(v.id(TokenIMEnd))},
		{Key: gguf.KeyEOT, Value: uint32(v.id(TokenIMEnd))},
		{Key: gguf.KeyPad, Value: uint32(v.id(TokenEndOfText))},
		{Key: gguf.KeyAddBOS, Value: false},
		{Key: gguf.KeyAddEOS, Value: false},
		{Key: gguf.KeyChatTemplate, Value: ChatTemplate},
	}
}
