package api

import (
	"net/http"
	"strconv"

	"github.com/kwyre/kwyre/services/inference/scrub"
)

// sseWriter writes a streamed chat answer as server-sent events in OpenAI's
// chunk format. Every chunk is built in one reused buffer that is wiped at
// the end; a token that ends inside a UTF-8 sequence is held back until the
// rest of the character arrives.
type sseWriter struct {
	w     http.ResponseWriter
	head  []byte // `data: {"id":...,"model":...` without the closing brace
	buf   []byte
	work  []byte
	carry []byte
}

func newSSE(w http.ResponseWriter, id, model, sessionID string, created int64) *sseWriter {
	head := []byte(`data: {"id":"`)
	head = appendEscaped(head, []byte(id))
	head = append(head, `","object":"chat.completion.chunk","created":`...)
	head = strconv.AppendInt(head, created, 10)
	head = append(head, `,"model":"`...)
	head = appendEscaped(head, []byte(model))
	head = append(head, '"')
	if sessionID != "" {
		head = append(head, `,"session_id":"`...)
		head = appendEscaped(head, []byte(sessionID))
		head = append(head, '"')
	}
	return &sseWriter{w: w, head: head, buf: make([]byte, 0, 1024), work: make([]byte, 0, 64), carry: make([]byte, 0, 4)}
}

// start sends the headers and the chunk that opens the assistant message.
func (s *sseWriter) start() error {
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	s.buf = append(s.buf[:0], s.head...)
	s.buf = append(s.buf, `,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n"...)
	return s.send()
}

// content sends one piece of generated text.
func (s *sseWriter) content(piece []byte) error {
	s.work = grow(s.work, len(s.carry)+len(piece))
	s.work = append(s.work[:0], s.carry...)
	s.work = append(s.work, piece...)
	n := completePrefix(s.work)
	s.carry = append(s.carry[:0], s.work[n:]...)
	if n == 0 {
		return nil
	}
	return s.contentChunk(s.work[:n])
}

func (s *sseWriter) contentChunk(text []byte) error {
	scrub.Do(func() {
		s.buf = grow(s.buf, len(s.head)+6*len(text)+96)
		s.buf = append(s.buf[:0], s.head...)
		s.buf = append(s.buf, `,"choices":[{"index":0,"delta":{"content":"`...)
		s.buf = appendEscaped(s.buf, text)
		s.buf = append(s.buf, `"},"finish_reason":null}]}`+"\n\n"...)
	})
	return s.send()
}

// finish sends what is held back, the closing chunk with the finish reason
// and usage, and the [DONE] marker.
func (s *sseWriter) finish(reason string, res Result) error {
	if len(s.carry) > 0 {
		if err := s.contentChunk(s.carry); err != nil {
			return err
		}
		s.carry = s.carry[:0]
	}
	s.buf = grow(s.buf, len(s.head)+256)
	s.buf = append(s.buf[:0], s.head...)
	s.buf = append(s.buf, `,"choices":[{"index":0,"delta":{},"finish_reason":"`...)
	s.buf = appendEscaped(s.buf, []byte(reason))
	s.buf = append(s.buf, `"}],"usage":`...)
	s.buf = appendUsage(s.buf, res)
	s.buf = append(s.buf, "}\n\n"...)
	if err := s.send(); err != nil {
		return err
	}
	// Comment lines overwrite net/http's buffers, which held the reply.
	writePadding(s.w, ssePadPiece)
	s.buf = append(s.buf[:0], "data: [DONE]\n\n"...)
	return s.send()
}

// fail ends the stream with an error event (and no [DONE]).
func (s *sseWriter) fail(e *apiError) error {
	s.buf = append(s.buf[:0], `data: {"error":{"message":"`...)
	s.buf = appendEscaped(s.buf, []byte(e.msg))
	s.buf = append(s.buf, `","type":"`...)
	s.buf = appendEscaped(s.buf, []byte(e.typ))
	s.buf = append(s.buf, `","code":`...)
	s.buf = appendNullableString(s.buf, e.code)
	s.buf = append(s.buf, "}}\n\n"...)
	return s.send()
}

func (s *sseWriter) send() error {
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// wipe overwrites every buffer that held text.
func (s *sseWriter) wipe() {
	scrub.Bytes(s.buf)
	scrub.Bytes(s.work)
	scrub.Bytes(s.carry)
}

// grow returns b (length kept) with room for at least n bytes, wiping the
// old array when it has to move.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	c := 2 * cap(b)
	if c < n {
		c = n
	}
	nb := make([]byte, len(b), c)
	copy(nb, b)
	scrub.Bytes(b)
	return nb
}

// appendWiping appends p to b, wiping the old array if b has to move.
func appendWiping(b, p []byte) []byte {
	b = grow(b, len(b)+len(p))
	return append(b, p...)
}

func appendUsage(b []byte, r Result) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(r.PromptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(r.CompletionTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(r.PromptTokens+r.CompletionTokens), 10)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, int64(r.CachedTokens), 10)
	b = append(b, `,"evaluated_tokens":`...)
	b = strconv.AppendInt(b, int64(r.EvaluatedTokens), 10)
	b = append(b, `},"time_to_first_token_ms":`...)
	b = strconv.AppendFloat(b, float64(r.TimeToFirstToken.Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(r.Duration.Microseconds())/1000, 'f', 3, 64)
	return append(b, '}')
}
