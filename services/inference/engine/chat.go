package engine

/*
#include <stdlib.h>
#include "kwyre_llama.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"unsafe"
)

// Message is one chat message. Content is plaintext in a buffer the caller
// owns and wipes; RenderChat copies it only into C memory it wipes.
type Message struct {
	Role    string
	Content []byte
}

// Errors of RenderChat and Tokenize.
var (
	ErrNoChatTemplate = errors.New("the model has no chat template llama.cpp supports, and its vocabulary fits none of the built-in ones (chatml, llama3, gemma)")
	ErrNUL            = errors.New("message contains a NUL byte")
	ErrTooLong        = errors.New("text too long to tokenize")
)

// builtinTemplates are tried, in order, for a model without a usable chat
// template: a template's name and a control token only it uses.
var builtinTemplates = []struct{ name, marker string }{
	{"chatml", "<|im_start|>"},
	{"llama3", "<|start_header_id|>"},
	{"gemma", "<start_of_turn>"},
}

// chatTemplate picks the model's own template if llama.cpp can apply it,
// else a built-in one whose control tokens the vocabulary has.
func (e *Engine) chatTemplate() (tmpl *C.char, name string) {
	if t := C.llama_model_chat_template(e.model, nil); t != nil && e.canRender(t) {
		return t, "model"
	}
	for _, b := range builtinTemplates {
		if !e.hasControl(b.marker) {
			continue
		}
		t := C.CString(b.name)
		if e.canRender(t) {
			e.tmplOwned = true
			return t, b.name
		}
		C.free(unsafe.Pointer(t))
	}
	return nil, ""
}

// canRender tries the template on a fixed, content-free conversation.
func (e *Engine) canRender(t *C.char) bool {
	msgs := []Message{{Role: "system", Content: []byte("s")}, {Role: "user", Content: []byte("u")}}
	_, err := render(t, msgs, true, nil)
	return err == nil
}

// hasControl says whether text is a single control token of the vocabulary.
func (e *Engine) hasControl(text string) bool {
	ct := C.CString(text)
	defer C.free(unsafe.Pointer(ct))
	var toks [4]C.llama_token
	n := C.llama_tokenize(e.vocab, ct, C.int32_t(len(text)), &toks[0], C.int32_t(len(toks)), false, true)
	return n == 1 && bool(C.llama_vocab_is_control(e.vocab, toks[0]))
}

// RenderChat applies the model's chat template to msgs and appends the
// result to dst (grown if needed; a buffer left behind is wiped). With
// addAssistant the result ends with the start of the assistant's turn.
// The caller wipes the result.
func (e *Engine) RenderChat(msgs []Message, addAssistant bool, dst []byte) ([]byte, error) {
	if e.tmpl == nil {
		return dst, ErrNoChatTemplate
	}
	return render(e.tmpl, msgs, addAssistant, dst)
}

func render(tmpl *C.char, msgs []Message, addAssistant bool, dst []byte) ([]byte, error) {
	// Roles and contents go, NUL-terminated, into one C buffer wiped after.
	total := 0
	for i, m := range msgs {
		if m.Role == "" || strings.IndexByte(m.Role, 0) >= 0 {
			return dst, fmt.Errorf("message %d: bad role", i)
		}
		if bytes.IndexByte(m.Content, 0) >= 0 {
			return dst, fmt.Errorf("message %d: %w", i, ErrNUL)
		}
		total += len(m.Role) + 1 + len(m.Content) + 1
	}
	if total > math.MaxInt32/2 {
		return dst, ErrTooLong
	}
	n := len(msgs)
	cbuf := C.malloc(C.size_t(total + 1))
	ptrs := C.malloc(C.size_t(2*n+1) * C.size_t(unsafe.Sizeof(uintptr(0))))
	if cbuf == nil || ptrs == nil {
		C.free(cbuf)
		C.free(ptrs)
		return dst, errors.New("render chat: out of memory")
	}
	defer C.kw_wipe_free(cbuf, C.size_t(total+1))
	defer C.free(ptrs)
	buf := unsafe.Slice((*byte)(cbuf), total+1)
	pp := unsafe.Slice((**C.char)(ptrs), 2*n+1)
	off := 0
	put := func(b []byte) *C.char {
		p := (*C.char)(unsafe.Pointer(&buf[off]))
		off += copy(buf[off:], b)
		buf[off] = 0
		off++
		return p
	}
	for i, m := range msgs {
		pp[i] = put([]byte(m.Role))
		pp[n+i] = put(m.Content)
	}
	roles, contents := (**C.char)(ptrs), (**C.char)(unsafe.Pointer(&pp[n]))

	want := 2*total + 256
	for range 3 {
		if cap(dst)-len(dst) < want+1 {
			dst = growWiped(dst, len(dst)+want+1)
		}
		tail := dst[len(dst):cap(dst)]
		r := C.kw_render(tmpl, roles, contents, C.size_t(n), C.bool(addAssistant),
			(*C.char)(unsafe.Pointer(&tail[0])), C.int32_t(min(len(tail), math.MaxInt32)))
		if r < 0 {
			clear(tail)
			return dst, ErrNoChatTemplate
		}
		if int(r) < len(tail) {
			return dst[:len(dst)+int(r)], nil
		}
		want = int(r)
	}
	return dst, errors.New("render chat: template output kept growing")
}

// Tokenize appends the tokens of text to dst (grown if needed; a buffer
// left behind is wiped), parsing special tokens such as <|im_start|>. Into
// an empty dst it adds the model's BOS token if the model wants one.
func (e *Engine) Tokenize(text []byte, dst []int32) ([]int32, error) {
	if len(text) == 0 {
		return dst, nil
	}
	if len(text) > math.MaxInt32/2 {
		return dst, ErrTooLong
	}
	addSpecial := C.bool(len(dst) == 0)
	want := len(text) + 8
	for range 3 {
		if cap(dst)-len(dst) < want {
			dst = growWiped32(dst, len(dst)+want)
		}
		tail := dst[len(dst):cap(dst)]
		n := C.kw_tokenize(e.vocab, (*C.char)(unsafe.Pointer(&text[0])), C.int32_t(len(text)),
			(*C.llama_token)(unsafe.Pointer(&tail[0])), C.int32_t(min(len(tail), math.MaxInt32)), addSpecial)
		if n >= 0 {
			return dst[:len(dst)+int(n)], nil
		}
		if n == math.MinInt32 {
			return dst, ErrTooLong
		}
		want = int(-n)
	}
	return dst, errors.New("tokenize: token count kept growing")
}

func growWiped32(b []int32, n int) []int32 {
	if cap(b) >= n {
		return b
	}
	nb := make([]int32, len(b), max(n, 2*cap(b)))
	copy(nb, b)
	clear(b[:cap(b)])
	return nb
}
