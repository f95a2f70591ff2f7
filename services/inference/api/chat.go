package api

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/kwyre/kwyre/services/inference/scrub"
	"github.com/kwyre/kwyre/services/inference/secbuf"
	"github.com/kwyre/kwyre/services/inference/session"
)

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	eng := s.currentEngine()
	if eng == nil {
		(&apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "model_loading",
			msg: "the model is still loading; see /health", retryAfter: 2}).write(w)
		return
	}
	s.chat(w, r, eng)
}

// chatTurn carries one request's state through the handler.
type chatTurn struct {
	s       *Server
	eng     Engine
	req     *chatRequest
	sess    *session.Session
	owner   string
	id      string
	created int64
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request, eng Engine) {
	lim := s.cfg.Limits
	body, e := readBody(r, lim.MaxBodyBytes)
	if e != nil {
		e.write(w)
		return
	}
	// Pure-Go plaintext handling runs under runtime/secret; llama.cpp calls
	// (cgo) cannot, so their buffers are wiped explicitly instead.
	var req *chatRequest
	ctxSize := eng.ContextSize()
	scrub.Do(func() { req, e = parseChat(body, lim, ctxSize) })
	scrub.Bytes(body)
	if e != nil {
		e.write(w)
		return
	}
	defer req.wipe()

	ctx, cancel := s.genContext(r.Context())
	defer cancel()

	t := &chatTurn{s: s, eng: eng, req: req, id: randomID("chatcmpl-", 12), created: time.Now().Unix()}
	if req.SessionID != "" {
		sess, ok := s.sessions.Get(req.SessionID)
		if !ok {
			(&apiError{status: http.StatusNotFound, typ: "invalid_request_error", param: "session_id", code: "session_not_found",
				msg: "session_id names no live session (ended, wiped or never created)"}).write(w)
			return
		}
		qctx, qcancel := context.WithTimeout(ctx, lim.QueueTimeout)
		err := sess.Lock(qctx)
		qcancel()
		if err != nil {
			s.waitFailed(w, r, ctx, "the session's previous turn is still running")
			return
		}
		defer sess.Unlock()
		t.sess, t.owner = sess, sess.ID
		// Ending or wiping the session stops its turn.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-sess.Done():
				cancel()
			case <-stop:
			}
		}()
	}

	prompt, e := t.promptTokens()
	defer scrub.Int32s(prompt)
	if e != nil {
		e.write(w)
		return
	}
	n := len(prompt)
	if n >= ctxSize {
		what := "the messages are"
		if t.sess != nil {
			what = "the session's conversation is"
		}
		errLimit(http.StatusBadRequest, "messages", fmt.Sprintf(
			"%s %d tokens; the context holds %d (-ctx), leaving no room to answer", what, n, ctxSize)).
			withCode("context_length_exceeded").write(w)
		return
	}
	maxTokens := req.MaxTokens
	if maxTokens == 0 {
		maxTokens = ctxSize - n
		if lim.MaxTokens > 0 && maxTokens > lim.MaxTokens {
			maxTokens = lim.MaxTokens
		}
	} else if n+maxTokens > ctxSize {
		errLimit(http.StatusBadRequest, "max_tokens", fmt.Sprintf(
			"the prompt (%d tokens) plus max_tokens (%d) exceed the context of %d tokens (-ctx)", n, maxTokens, ctxSize)).
			withCode("context_length_exceeded").write(w)
		return
	}
	samp := Sampling{Temperature: req.Temperature, TopP: req.TopP, Seed: req.Seed, MaxTokens: maxTokens, Stop: req.Stop}
	if !req.SeedSet {
		var b [8]byte
		rand.Read(b[:])
		samp.Seed = binary.LittleEndian.Uint64(b[:])
	}

	qctx, qcancel := context.WithTimeout(ctx, lim.QueueTimeout)
	slot, err := eng.Acquire(qctx, t.owner)
	qcancel()
	if err != nil {
		s.waitFailed(w, r, ctx, "no inference slot became free")
		return
	}
	failed := true
	defer func() {
		// A failed turn or a wiped session leaves nothing behind in the KV
		// cache; a stateless request's slot (owner "") is wiped on Release.
		if t.sess != nil && (failed || t.sess.Buf.Wiped() || ctx.Err() != nil) {
			slot.Wipe()
		}
		slot.Release()
	}()

	var sse *sseWriter
	if req.Stream {
		sse = newSSE(w, t.id, s.cfg.ModelName, req.SessionID, t.created)
		defer sse.wipe()
		if err := sse.start(); err != nil {
			s.metrics.disconnects.Add(1)
			return
		}
	}
	reply := make([]byte, 0, 1024)
	defer func() { scrub.Bytes(reply) }()
	// The whole reply is kept only where it is needed: for the session's
	// buffer and for a non-streamed answer.
	keep := t.sess != nil || sse == nil
	emit := func(piece []byte) error {
		if keep {
			reply = appendWiping(reply, piece)
		}
		if sse != nil {
			return sse.content(piece)
		}
		return nil
	}
	res, err := slot.Generate(ctx, prompt, samp, emit)
	finish := res.FinishReason
	if err == nil && finish == "cancelled" && ctx.Err() == nil {
		err = context.Canceled // the engine stopped on its own: treat as failure
	}
	switch {
	case err == nil && finish != "cancelled":
	case errors.Is(err, ErrContextFull):
		finish = "length"
	case r.Context().Err() != nil:
		s.metrics.generation(res)
		s.metrics.disconnects.Add(1)
		s.log.Info("client disconnected; generation stopped", "completion_tokens", res.CompletionTokens)
		return
	case ctx.Err() != nil, errors.Is(err, ErrWiped):
		e := &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "wiped",
			msg: "the session (or every session) was wiped while this request ran", retryAfter: 1}
		if sse != nil {
			sse.fail(e)
		} else {
			e.write(w)
		}
		return
	default:
		s.log.Error("generation failed", "err", err)
		e := &apiError{status: http.StatusInternalServerError, typ: "server_error", msg: "generation failed"}
		if sse != nil {
			sse.fail(e)
		} else {
			e.write(w)
		}
		return
	}
	if finish == "" {
		finish = "stop"
	}
	s.metrics.generation(res)
	if t.sess != nil {
		if err := t.commit(reply); err != nil && !errors.Is(err, secbuf.ErrWiped) {
			s.log.Error("storing the session turn failed", "err", err)
		}
	}
	failed = false
	s.log.Info("chat", "stream", req.Stream, "session", t.sess != nil, "prompt_tokens", res.PromptTokens,
		"cached_tokens", res.CachedTokens, "evaluated_tokens", res.EvaluatedTokens,
		"completion_tokens", res.CompletionTokens, "finish", finish,
		"ttft_ms", res.TimeToFirstToken.Milliseconds(), "ms", res.Duration.Milliseconds())
	if sse != nil {
		sse.finish(finish, res)
		return
	}
	t.writeAnswer(w, reply, finish, res)
}

func (e *apiError) withCode(code string) *apiError {
	e.code = code
	return e
}

// waitFailed answers a request whose wait for a slot or its session ended:
// 503 with Retry-After if it waited too long, nothing if the client left.
func (s *Server) waitFailed(w http.ResponseWriter, r *http.Request, ctx context.Context, what string) {
	if r.Context().Err() != nil {
		s.metrics.disconnects.Add(1)
		return
	}
	if ctx.Err() != nil {
		(&apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "wiped",
			msg: "all sessions were wiped while this request waited", retryAfter: 1}).write(w)
		return
	}
	s.metrics.queueRejections.Add(1)
	(&apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "queue_timeout",
		msg: what + " within the queue timeout", retryAfter: 5}).write(w)
}

// promptTokens renders the conversation (the session's history, then the
// request's messages) with the chat template and tokenizes it. The rendered
// text is wiped before it returns; the caller wipes the tokens.
func (t *chatTurn) promptTokens() ([]int32, *apiError) {
	var (
		toks []int32
		ae   *apiError
	)
	build := func(history []secbuf.Message) {
		msgs := make([]Message, 0, len(history)+len(t.req.Messages))
		for _, m := range history {
			msgs = append(msgs, Message{Role: m.Role, Content: m.Content})
		}
		msgs = append(msgs, t.req.Messages...)
		defer clear(msgs)
		size := 256
		for _, m := range msgs {
			size += len(m.Content) + 32
		}
		text, err := t.eng.RenderChat(msgs, true, make([]byte, 0, size))
		defer scrub.Bytes(text)
		if err != nil {
			t.s.log.Error("chat template failed", "err", err)
			ae = &apiError{status: http.StatusInternalServerError, typ: "server_error", msg: "applying the chat template failed"}
			return
		}
		toks, err = t.eng.Tokenize(text, make([]int32, 0, len(text)/2+16))
		if err != nil {
			scrub.Int32s(toks)
			toks = nil
			t.s.log.Error("tokenize failed", "err", err)
			ae = &apiError{status: http.StatusInternalServerError, typ: "server_error", msg: "tokenizing the prompt failed"}
		}
	}
	if t.sess == nil {
		build(nil)
		return toks, ae
	}
	err := t.sess.Buf.Open(func(history []secbuf.Message) error {
		build(history)
		return nil
	})
	if err != nil {
		if errors.Is(err, secbuf.ErrWiped) {
			return nil, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", param: "session_id", code: "session_not_found",
				msg: "the session was wiped"}
		}
		t.s.log.Error("opening the session buffer failed", "err", err)
		return nil, &apiError{status: http.StatusInternalServerError, typ: "server_error", msg: "opening the session failed"}
	}
	return toks, ae
}

// commit seals the request's messages and the reply into the session.
func (t *chatTurn) commit(reply []byte) error {
	for _, m := range t.req.Messages {
		if err := t.sess.Buf.Append(m.Role, m.Content); err != nil {
			return err
		}
	}
	return t.sess.Buf.Append("assistant", reply)
}

// writeAnswer writes a non-streamed chat.completion from a wiped buffer.
func (t *chatTurn) writeAnswer(w http.ResponseWriter, reply []byte, finish string, res Result) {
	var b []byte
	defer func() { scrub.Bytes(b) }()
	scrub.Do(func() { b = t.buildAnswer(reply, finish, res) })
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(b); err != nil {
		return
	}
	// Trailing whitespace overwrites net/http's buffers, which held the reply.
	writePadding(w, padPiece)
}

func (t *chatTurn) buildAnswer(reply []byte, finish string, res Result) []byte {
	b := make([]byte, 0, 6*len(reply)+512)
	b = append(b, `{"id":"`...)
	b = append(b, t.id...)
	b = append(b, `","object":"chat.completion","created":`...)
	b = strconv.AppendInt(b, t.created, 10)
	b = append(b, `,"model":"`...)
	b = appendEscaped(b, []byte(t.s.cfg.ModelName))
	b = append(b, '"')
	if t.sess != nil {
		b = append(b, `,"session_id":"`...)
		b = append(b, t.sess.ID...)
		b = append(b, '"')
	}
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":"`...)
	b = appendEscaped(b, reply)
	b = append(b, `"},"finish_reason":"`...)
	b = appendEscaped(b, []byte(finish))
	b = append(b, `"}],"usage":`...)
	b = appendUsage(b, res)
	return append(b, "}\n"...)
}
