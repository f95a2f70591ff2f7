package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"

	"github.com/kwyre/kwyre/services/inference/scrub"
)

// chatRequest is a parsed POST /v1/chat/completions body. Message contents
// and stop sequences live in arena, a buffer the handler wipes; none of them
// ever becomes a Go string.
type chatRequest struct {
	Model        string
	Messages     []Message
	MaxTokens    int // 0 = not given
	Temperature  float32
	TopP         float32
	Seed         uint64
	SeedSet      bool
	Stop         [][]byte
	Stream       bool
	IncludeUsage bool
	SessionID    string

	arena []byte
}

// wipe overwrites every plaintext byte the request held.
func (r *chatRequest) wipe() {
	scrub.Bytes(r.arena)
	clear(r.Messages)
	clear(r.Stop)
}

// rawChat is what encoding/json sees: contents stay raw JSON, copied into
// slices this package wipes.
type rawChat struct {
	Model               string          `json:"model"`
	Messages            []rawMessage    `json:"messages"`
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Seed                *int64          `json:"seed"`
	N                   *int64          `json:"n"`
	Stop                json.RawMessage `json:"stop"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	SessionID string `json:"session_id"`
}

type rawMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type rawPart struct {
	Type string          `json:"type"`
	Text json.RawMessage `json:"text"`
}

func (r *rawChat) wipe() {
	for i := range r.Messages {
		scrub.Bytes(r.Messages[i].Content)
	}
	scrub.Bytes(r.Stop)
}

// readBody reads the whole body into one buffer, at most limit bytes. It
// grows the buffer itself so that no copy it leaves behind keeps plaintext.
func readBody(r *http.Request, limit int64) ([]byte, *apiError) {
	size := 4096
	if r.ContentLength > limit {
		return nil, errLimit(http.StatusRequestEntityTooLarge, "max_body_bytes",
			fmt.Sprintf("request body is larger than the limit of %d bytes (max_body_bytes)", limit))
	}
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			bigger := make([]byte, len(buf), 2*cap(buf))
			copy(bigger, buf)
			scrub.Bytes(buf)
			buf = bigger
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			scrub.Bytes(buf)
			return nil, errLimit(http.StatusRequestEntityTooLarge, "max_body_bytes",
				fmt.Sprintf("request body is larger than the limit of %d bytes (max_body_bytes)", limit))
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			scrub.Bytes(buf)
			return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", msg: "reading the request body failed"}
		}
	}
}

// decodeJSON unmarshals body into v with errors that name fields and byte
// offsets, never values.
func decodeJSON(body []byte, v any) *apiError {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errBadRequest("", fmt.Sprintf("request body is not valid JSON (error at byte offset %d)", syn.Offset))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return errBadRequest(field, fmt.Sprintf("field %s must be of JSON type %s", field, jsonKind(typ.Type.Kind().String())))
	default:
		return errBadRequest("", "request body is not valid JSON")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string", "slice":
		if goKind == "slice" {
			return "array or string"
		}
		return "string"
	case "struct", "map", "ptr":
		return "object"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}

// parseChat parses and checks a chat request body against lim. maxTokens is
// the engine's context size, the ceiling for max_tokens.
func parseChat(body []byte, lim Limits, ctxSize int) (*chatRequest, *apiError) {
	var raw rawChat
	defer raw.wipe()
	if e := decodeJSON(body, &raw); e != nil {
		return nil, e
	}
	req := &chatRequest{Model: raw.Model, Stream: raw.Stream, SessionID: raw.SessionID, Temperature: 0.8, TopP: 0.95}
	if raw.StreamOptions != nil {
		req.IncludeUsage = raw.StreamOptions.IncludeUsage
	}
	if len(raw.Messages) == 0 {
		return nil, errBadRequest("messages", "messages must hold at least one message")
	}
	if len(raw.Messages) > lim.MaxMessages {
		return nil, errLimit(http.StatusBadRequest, "messages",
			fmt.Sprintf("messages holds %d messages; the limit is %d (max_messages)", len(raw.Messages), lim.MaxMessages))
	}
	if raw.N != nil && *raw.N != 1 {
		return nil, errBadRequest("n", "n must be 1")
	}

	maxTok := lim.MaxTokens
	if maxTok <= 0 || maxTok > ctxSize && ctxSize > 0 {
		maxTok = ctxSize
	}
	mt := raw.MaxCompletionTokens
	param := "max_completion_tokens"
	if mt == nil {
		mt, param = raw.MaxTokens, "max_tokens"
	}
	if mt != nil {
		switch {
		case *mt < 1:
			return nil, errBadRequest(param, param+" must be at least 1")
		case maxTok > 0 && *mt > int64(maxTok):
			return nil, errLimit(http.StatusBadRequest, param,
				fmt.Sprintf("%s is %d; the limit is %d (max_tokens)", param, *mt, maxTok))
		}
		req.MaxTokens = int(*mt)
	}
	if raw.Temperature != nil {
		t := *raw.Temperature
		if math.IsNaN(t) || t < 0 || t > 2 {
			return nil, errBadRequest("temperature", "temperature must be between 0 and 2")
		}
		req.Temperature = float32(t)
	}
	if raw.TopP != nil {
		p := *raw.TopP
		if math.IsNaN(p) || p <= 0 || p > 1 {
			return nil, errBadRequest("top_p", "top_p must be greater than 0 and at most 1")
		}
		req.TopP = float32(p)
	}
	if raw.Seed != nil {
		req.Seed, req.SeedSet = uint64(*raw.Seed), true
	}

	// One arena for every decoded string: decoding never makes a string
	// longer, so the arena never reallocates and leaves no stray copy.
	total := len(raw.Stop)
	for _, m := range raw.Messages {
		total += len(m.Content)
	}
	req.arena = make([]byte, 0, total)
	req.Messages = make([]Message, 0, len(raw.Messages))
	for i, m := range raw.Messages {
		field := fmt.Sprintf("messages[%d]", i)
		switch m.Role {
		case "system", "user", "assistant":
		case "":
			req.wipe()
			return nil, errBadRequest(field+".role", field+".role is missing")
		default:
			req.wipe()
			return nil, errBadRequest(field+".role", field+".role must be system, user or assistant")
		}
		start := len(req.arena)
		var e *apiError
		req.arena, e = appendContent(req.arena, m.Content, field+".content")
		if e != nil {
			req.wipe()
			return nil, e
		}
		if n := len(req.arena) - start; n > lim.MaxContentBytes {
			req.wipe()
			return nil, errLimit(http.StatusBadRequest, field+".content",
				fmt.Sprintf("%s.content is %d bytes; the limit is %d (max_content_bytes)", field, n, lim.MaxContentBytes))
		}
		req.Messages = append(req.Messages, Message{Role: m.Role, Content: req.arena[start:len(req.arena):len(req.arena)]})
	}
	if e := req.parseStop(raw.Stop, lim); e != nil {
		req.wipe()
		return nil, e
	}
	return req, nil
}

// appendContent decodes a message's content: a string, null, or an array
// of {"type":"text","text":"..."} parts, which are joined.
func appendContent(dst []byte, raw json.RawMessage, field string) ([]byte, *apiError) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return dst, nil
	case raw[0] == '"':
		out, err := appendUnescaped(dst, raw)
		if err != nil {
			return dst, errBadRequest(field, field+" is "+err.Error())
		}
		return out, nil
	case raw[0] == '[':
		var parts []rawPart
		defer func() {
			for i := range parts {
				scrub.Bytes(parts[i].Text)
			}
		}()
		if e := decodeJSON(raw, &parts); e != nil {
			return dst, errBadRequest(field, field+" must be a string or an array of text parts")
		}
		for i, p := range parts {
			if p.Type != "text" {
				return dst, errBadRequest(fmt.Sprintf("%s[%d].type", field, i), fmt.Sprintf("%s[%d]: only parts of type text are supported", field, i))
			}
			out, err := appendUnescaped(dst, bytes.TrimSpace(p.Text))
			if err != nil {
				return dst, errBadRequest(fmt.Sprintf("%s[%d].text", field, i), fmt.Sprintf("%s[%d].text is %s", field, i, err))
			}
			dst = out
		}
		return dst, nil
	default:
		return dst, errBadRequest(field, field+" must be a string or an array of text parts")
	}
}

func (r *chatRequest) parseStop(raw json.RawMessage, lim Limits) *apiError {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var items []json.RawMessage
	if raw[0] == '"' {
		items = []json.RawMessage{raw}
	} else if e := decodeJSON(raw, &items); e != nil {
		return errBadRequest("stop", "stop must be a string or an array of strings")
	}
	defer func() {
		if raw[0] != '"' {
			for _, it := range items {
				scrub.Bytes(it)
			}
		}
	}()
	if len(items) > lim.MaxStop {
		return errLimit(http.StatusBadRequest, "stop", fmt.Sprintf("stop holds %d sequences; the limit is %d (max_stop)", len(items), lim.MaxStop))
	}
	for i, it := range items {
		start := len(r.arena)
		out, err := appendUnescaped(r.arena, bytes.TrimSpace(it))
		if err != nil {
			return errBadRequest("stop", fmt.Sprintf("stop[%d] is %s", i, err))
		}
		r.arena = out
		n := len(r.arena) - start
		if n == 0 {
			return errBadRequest("stop", fmt.Sprintf("stop[%d] is empty", i))
		}
		if n > lim.MaxStopBytes {
			return errLimit(http.StatusBadRequest, "stop", fmt.Sprintf("stop[%d] is %d bytes; the limit is %d (max_stop_bytes)", i, n, lim.MaxStopBytes))
		}
		r.Stop = append(r.Stop, r.arena[start:len(r.arena):len(r.arena)])
	}
	return nil
}
