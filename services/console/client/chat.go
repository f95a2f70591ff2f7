package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// maxCompletion bounds a non-streamed answer.
const maxCompletion = 8 << 20

// ChatResult is the metadata of one finished turn.
type ChatResult struct {
	FinishReason     string
	PromptTokens     int
	CompletionTokens int
	CachedTokens     int
}

// Emit receives one piece of the reply as it streams. The slice is wiped
// when Emit returns, so Emit must copy what it keeps.
type Emit func(piece []byte) error

// chunk is one streamed event (or a whole non-streamed answer).
type chunk struct {
	Choices []struct {
		Delta struct {
			Content json.RawMessage `json:"content"`
		} `json:"delta"`
		Message struct {
			Content json.RawMessage `json:"content"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

func (c *chunk) wipe() {
	for i := range c.Choices {
		clear(c.Choices[i].Delta.Content)
		clear(c.Choices[i].Message.Content)
	}
}

// Chat sends message as the next user turn of session sessionID and streams
// the reply to emit. The service keeps the conversation; only the new message
// travels. Every buffer that held the message or the reply is wiped before
// Chat returns. Cancelling ctx stops the generation.
func (c *Client) Chat(ctx context.Context, sessionID string, message []byte, emit Emit) (ChatResult, error) {
	const op = "POST /v1/chat/completions"
	body := make([]byte, 0, len(message)+len(sessionID)+96)
	body = append(body, `{"stream":true,`...)
	if sessionID != "" {
		body = append(body, `"session_id":`...)
		body = appendJSONString(body, []byte(sessionID))
		body = append(body, ',')
	}
	body = append(body, `"messages":[{"role":"user","content":`...)
	body = appendJSONString(body, message)
	body = append(body, `}]}`...)
	defer clear(body)

	req, err := c.newRequest(ctx, http.MethodPost, "/v1/chat/completions", body)
	if err != nil {
		return ChatResult{}, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ChatResult{}, ctx.Err()
		}
		return ChatResult{}, err
	}
	defer resp.Body.Close()

	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/json" {
		return c.whole(op, resp.Body, emit)
	}
	return c.stream(ctx, op, resp.Body, emit)
}

func (c *Client) stream(ctx context.Context, op string, r io.Reader, emit Emit) (ChatResult, error) {
	sr := newSSEReader(r)
	defer sr.wipe()
	piece := make([]byte, 0, 256)
	defer func() { clear(piece[:cap(piece)]) }()
	var res ChatResult
	for {
		data, err := sr.next()
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return res, &UnavailableError{Op: op, Err: errors.New("stream ended before [DONE]")}
			}
			return res, &UnavailableError{Op: op, Err: err}
		}
		if string(data) == "[DONE]" {
			return res, nil
		}
		var ch chunk
		if err := json.Unmarshal(data, &ch); err != nil {
			// The decoder's message could quote content: keep it out.
			return res, fmt.Errorf("%s: malformed stream event", op)
		}
		if piece, err = c.handle(op, &ch, &res, piece, emit, false); err != nil {
			return res, err
		}
	}
}

func (c *Client) whole(op string, r io.Reader, emit Emit) (ChatResult, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxCompletion))
	defer clear(b)
	if err != nil {
		return ChatResult{}, &UnavailableError{Op: op, Err: err}
	}
	var ch chunk
	if err := json.Unmarshal(b, &ch); err != nil {
		return ChatResult{}, fmt.Errorf("%s: malformed answer", op)
	}
	var res ChatResult
	piece := make([]byte, 0, 256)
	piece, err = c.handle(op, &ch, &res, piece, emit, true)
	clear(piece[:cap(piece)])
	return res, err
}

// handle passes one chunk's text to emit and records its metadata.
func (c *Client) handle(op string, ch *chunk, res *ChatResult, piece []byte, emit Emit, whole bool) ([]byte, error) {
	defer ch.wipe()
	if len(ch.Error) > 0 && string(ch.Error) != "null" {
		e := &APIError{Op: op}
		b := append([]byte(`{"error":`), ch.Error...)
		b = append(b, '}')
		e.parseErrorJSON(b)
		if e.Message == "" {
			e.Message = "service reported an error"
		}
		return piece, e
	}
	for i := range ch.Choices {
		content := ch.Choices[i].Delta.Content
		if whole {
			content = ch.Choices[i].Message.Content
		}
		if len(content) > 0 && string(content) != "null" {
			var err error
			clear(piece[:cap(piece)])
			if cap(piece) < len(content) {
				// Unquoting never grows the text: size once, so no
				// partial copy is left behind by append.
				piece = make([]byte, 0, len(content))
			}
			piece, err = appendUnquoted(piece[:0], content)
			if err != nil {
				return piece, fmt.Errorf("%s: malformed content in answer", op)
			}
			if len(piece) > 0 {
				if err := emit(piece); err != nil {
					return piece, err
				}
			}
		}
		if fr := ch.Choices[i].FinishReason; fr != nil && *fr != "" {
			res.FinishReason = *fr
		}
	}
	if u := ch.Usage; u != nil {
		res.PromptTokens = u.PromptTokens
		res.CompletionTokens = u.CompletionTokens
		res.CachedTokens = u.PromptTokensDetails.CachedTokens
	}
	return piece, nil
}
