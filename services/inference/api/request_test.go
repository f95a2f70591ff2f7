package api

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func testLimits() Limits {
	l := DefaultLimits()
	l.MaxMessages = 4
	l.MaxContentBytes = 64
	l.MaxTokens = 100
	l.MaxStop = 2
	l.MaxStopBytes = 8
	return l
}

// secretWord appears in every request body below; no error may repeat it.
const secretWord = "Zebrafinch"

func TestParseChatValid(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, r *chatRequest)
	}{
		{"string content", `{"messages":[{"role":"user","content":"Zebrafinch \u00e9\n"}]}`, func(t *testing.T, r *chatRequest) {
			if len(r.Messages) != 1 || r.Messages[0].Role != "user" || string(r.Messages[0].Content) != "Zebrafinch é\n" {
				t.Fatalf("messages = %+v", r.Messages)
			}
			if r.Temperature != 0.8 || r.TopP != 0.95 || r.MaxTokens != 0 || r.Stream || r.SeedSet {
				t.Fatalf("defaults = %+v", r)
			}
		}},
		{"parts and null", `{"messages":[{"role":"system","content":null},{"role":"user","content":[{"type":"text","text":"Zebra"},{"type":"text","text":"finch"}]}]}`, func(t *testing.T, r *chatRequest) {
			if len(r.Messages[0].Content) != 0 || string(r.Messages[1].Content) != secretWord {
				t.Fatalf("messages = %q %q", r.Messages[0].Content, r.Messages[1].Content)
			}
		}},
		{"sampling", `{"messages":[{"role":"user","content":"Zebrafinch"}],"max_tokens":100,"temperature":0,"top_p":0.5,"seed":7,"stream":true,"stream_options":{"include_usage":true},"session_id":"sess_x","n":1}`, func(t *testing.T, r *chatRequest) {
			if r.MaxTokens != 100 || r.Temperature != 0 || r.TopP != 0.5 || r.Seed != 7 || !r.SeedSet || !r.Stream || !r.IncludeUsage || r.SessionID != "sess_x" {
				t.Fatalf("parsed %+v", r)
			}
		}},
		{"max_completion_tokens wins", `{"messages":[{"role":"user","content":"x"}],"max_tokens":5,"max_completion_tokens":9}`, func(t *testing.T, r *chatRequest) {
			if r.MaxTokens != 9 {
				t.Fatalf("MaxTokens = %d", r.MaxTokens)
			}
		}},
		{"stop string", `{"messages":[{"role":"user","content":"x"}],"stop":"\n\n"}`, func(t *testing.T, r *chatRequest) {
			if len(r.Stop) != 1 || string(r.Stop[0]) != "\n\n" {
				t.Fatalf("stop = %q", r.Stop)
			}
		}},
		{"stop array", `{"messages":[{"role":"user","content":"x"}],"stop":["a","bc"]}`, func(t *testing.T, r *chatRequest) {
			if len(r.Stop) != 2 || string(r.Stop[0]) != "a" || string(r.Stop[1]) != "bc" {
				t.Fatalf("stop = %q", r.Stop)
			}
		}},
		{"unknown fields ignored", `{"messages":[{"role":"assistant","content":"x","name":"n"}],"user":"u","logprobs":false}`, func(t *testing.T, r *chatRequest) {
			if len(r.Messages) != 1 {
				t.Fatal("message lost")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, e := parseChat([]byte(tt.body), testLimits(), 512)
			if e != nil {
				t.Fatalf("refused: %d %s", e.status, e.msg)
			}
			tt.check(t, r)
			arena := r.arena
			r.wipe()
			if !bytes.Equal(arena[:cap(arena)], make([]byte, cap(arena))) {
				t.Fatal("wipe left plaintext in the arena")
			}
		})
	}
}

func TestParseChatRefusals(t *testing.T) {
	long := strings.Repeat("Zebrafinch", 7) // 70 bytes > 64
	tests := []struct {
		name   string
		body   string
		status int
		param  string
		limit  bool
	}{
		{"not json", `{"messages":[{"role":"user","content":"Zebrafinch"}`, 400, "", false},
		{"garbage", `Zebrafinch`, 400, "", false},
		{"wrong type", `{"messages":"Zebrafinch"}`, 400, "messages", false},
		{"no messages", `{"messages":[]}`, 400, "messages", false},
		{"too many messages", `{"messages":[{"role":"user","content":"a"},{"role":"user","content":"a"},{"role":"user","content":"a"},{"role":"user","content":"a"},{"role":"user","content":"Zebrafinch"}]}`, 400, "messages", true},
		{"content too long", `{"messages":[{"role":"user","content":"` + long + `"}]}`, 400, "messages[0].content", true},
		{"bad role", `{"messages":[{"role":"Zebrafinch","content":"x"}]}`, 400, "messages[0].role", false},
		{"missing role", `{"messages":[{"content":"Zebrafinch"}]}`, 400, "messages[0].role", false},
		{"content number", `{"messages":[{"role":"user","content":42}]}`, 400, "messages[0].content", false},
		{"content object", `{"messages":[{"role":"user","content":{"a":"Zebrafinch"}}]}`, 400, "messages[0].content", false},
		{"image part", `{"messages":[{"role":"user","content":[{"type":"image_url","text":"Zebrafinch"}]}]}`, 400, "messages[0].content[0].type", false},
		{"max_tokens zero", `{"messages":[{"role":"user","content":"Zebrafinch"}],"max_tokens":0}`, 400, "max_tokens", false},
		{"max_tokens over limit", `{"messages":[{"role":"user","content":"Zebrafinch"}],"max_tokens":101}`, 400, "max_tokens", true},
		{"temperature", `{"messages":[{"role":"user","content":"Zebrafinch"}],"temperature":3}`, 400, "temperature", false},
		{"top_p", `{"messages":[{"role":"user","content":"Zebrafinch"}],"top_p":0}`, 400, "top_p", false},
		{"n", `{"messages":[{"role":"user","content":"Zebrafinch"}],"n":2}`, 400, "n", false},
		{"too many stops", `{"messages":[{"role":"user","content":"x"}],"stop":["a","b","Zebrafinch"]}`, 400, "stop", true},
		{"stop too long", `{"messages":[{"role":"user","content":"x"}],"stop":"Zebrafinch"}`, 400, "stop", true},
		{"empty stop", `{"messages":[{"role":"user","content":"x"}],"stop":[""]}`, 400, "stop", false},
		{"stop number", `{"messages":[{"role":"user","content":"x"}],"stop":5}`, 400, "stop", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, e := parseChat([]byte(tt.body), testLimits(), 512)
			if e == nil {
				r.wipe()
				t.Fatal("accepted")
			}
			if e.status != tt.status || e.param != tt.param {
				t.Fatalf("got %d param %q (%s), want %d param %q", e.status, e.param, e.msg, tt.status, tt.param)
			}
			if tt.limit && e.code != "limit_exceeded" {
				t.Fatalf("code %q, want limit_exceeded", e.code)
			}
			if strings.Contains(e.msg, "Zebra") || strings.Contains(e.msg, "finch") {
				t.Fatalf("error message quotes content: %s", e.msg)
			}
		})
	}
}

func TestReadBodyLimit(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		length  int64 // Content-Length; -1 = unknown (chunked)
		limit   int64
		wantErr bool
	}{
		{"fits", "0123456789", 10, 10, false},
		{"fits chunked", strings.Repeat("x", 10000), -1, 10000, false},
		{"declared too big", "0123456789", 10, 9, true},
		{"chunked too big", strings.Repeat("x", 10001), -1, 10000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("POST", "/", strings.NewReader(tt.body))
			r.ContentLength = tt.length
			b, e := readBody(r, tt.limit)
			if tt.wantErr {
				if e == nil || e.status != http.StatusRequestEntityTooLarge || e.code != "limit_exceeded" {
					t.Fatalf("got %v, want 413", e)
				}
				return
			}
			if e != nil || string(b) != tt.body {
				t.Fatalf("read %d bytes, err %v", len(b), e)
			}
		})
	}
}
