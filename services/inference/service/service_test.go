package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/inference/api"
	"github.com/kwyre/kwyre/services/inference/gguf"
)

func TestDemoReplyExact(t *testing.T) {
	c := start(t, Options{Model: models.demo})
	tests := []struct {
		name string
		body string
	}{
		{"greedy", `{"messages":` + userMsg("Hello, who are you?") + `,"temperature":0}`},
		{"default sampling", `{"messages":` + userMsg("Say something.") + `}`},
		{"system and parts", `{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}],"seed":3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := c.chat(tt.body)
			if code != 200 {
				t.Fatalf("status %d: %+v", code, out.Error)
			}
			if len(out.Choices) != 1 || out.Choices[0].Message.Content != demoReply || out.Choices[0].Message.Role != "assistant" {
				t.Fatalf("reply %+v, want %q", out.Choices, demoReply)
			}
			if *out.Choices[0].FinishReason != "stop" || out.Object != "chat.completion" || out.Model != "demo.gguf" || !strings.HasPrefix(out.ID, "chatcmpl-") {
				t.Fatalf("answer %+v", out)
			}
			u := out.Usage
			if u == nil || u.PromptTokens == 0 || u.CompletionTokens == 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens ||
				u.PromptTokensDetails.CachedTokens+u.PromptTokensDetails.EvaluatedTokens != u.PromptTokens {
				t.Fatalf("usage %+v", u)
			}
		})
	}
}

func TestStreamFraming(t *testing.T) {
	c := start(t, Options{Model: models.demo})
	resp, events := c.stream(`{"stream":true,"temperature":0,"messages":` + userMsg("Stream it") + `}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if len(events) < 4 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events %q: want at least role, content, finish and [DONE]", events)
	}
	var text strings.Builder
	var last completion
	for i, ev := range events[:len(events)-1] {
		var ch completion
		if err := json.Unmarshal([]byte(ev), &ch); err != nil {
			t.Fatalf("event %d is not JSON: %q", i, ev)
		}
		if ch.Object != "chat.completion.chunk" || len(ch.Choices) != 1 {
			t.Fatalf("event %d: %q", i, ev)
		}
		d := ch.Choices[0].Delta
		if i == 0 && (d.Role == nil || *d.Role != "assistant") {
			t.Fatalf("first event does not open the assistant message: %q", ev)
		}
		if d.Content != nil {
			text.WriteString(*d.Content)
		}
		if i < len(events)-2 && ch.Choices[0].FinishReason != nil {
			t.Fatalf("finish_reason before the last chunk: %q", ev)
		}
		last = ch
	}
	if text.String() != demoReply {
		t.Fatalf("streamed %q, want %q", text.String(), demoReply)
	}
	if last.Choices[0].FinishReason == nil || *last.Choices[0].FinishReason != "stop" || last.Usage == nil || last.Usage.CompletionTokens == 0 {
		t.Fatalf("last chunk %+v", last)
	}
}

func TestEndpoints(t *testing.T) {
	c := start(t, Options{Model: models.tiny})
	code, b := c.call("GET", "/health", "")
	var h struct {
		Status   string
		Progress float64
		Model    string
		GPU      string
	}
	if code != 200 || json.Unmarshal(b, &h) != nil || h.Status != "ready" || h.Progress != 1 || h.Model != "tiny.gguf" || h.GPU == "" {
		t.Fatalf("health %d %s", code, b)
	}
	code, b = c.call("GET", "/v1/models", "")
	var m struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	if code != 200 || json.Unmarshal(b, &m) != nil || m.Object != "list" || len(m.Data) != 1 || m.Data[0].ID != "tiny.gguf" {
		t.Fatalf("models %d %s", code, b)
	}
	if code, out := c.chat(`{"max_tokens":8,"messages":` + userMsg("count") + `}`); code != 200 || out.Usage.CompletionTokens == 0 {
		t.Fatalf("chat %d %+v", code, out)
	}
	code, b = c.call("GET", "/audit", "")
	var a struct {
		ActiveSessions   int `json:"active_sessions"`
		SecurityControls struct {
			NetworkBinding    string `json:"network_binding"`
			WeightIntegrity   string `json:"weight_integrity"`
			IntrusionWatchdog struct {
				Running bool `json:"running"`
			} `json:"intrusion_watchdog"`
			ContentLogging string `json:"content_logging"`
		} `json:"security_controls"`
	}
	if code != 200 || json.Unmarshal(b, &a) != nil {
		t.Fatalf("audit %d %s", code, b)
	}
	if a.SecurityControls.NetworkBinding != c.svc.Addr()+" (localhost only)" ||
		!strings.HasPrefix(a.SecurityControls.WeightIntegrity, "structure-only") ||
		a.SecurityControls.IntrusionWatchdog.Running || a.ActiveSessions != 0 {
		t.Fatalf("audit %s", b)
	}
	for _, sample := range []string{
		`kwyre_requests_total{endpoint="/v1/chat/completions",code="200"}`,
		`kwyre_tokens_total{kind="prompt"}`,
		`kwyre_tokens_total{kind="completion"}`,
		`kwyre_time_to_first_token_seconds_count`,
		`kwyre_model_load_seconds`,
		`kwyre_generation_seconds_total{part="decode"}`, // on the CPU: the computing
		`kwyre_generation_seconds_total{part="sample"}`,
		`kwyre_generation_seconds_total{part="other"}`,
	} {
		if c.metric(sample) <= 0 {
			t.Errorf("%s not above 0", sample)
		}
	}
}

func TestPinnedHashAndIntegrityFile(t *testing.T) {
	sum, err := gguf.SHA256(models.tiny)
	if err != nil {
		t.Fatal(err)
	}
	integ := filepath.Join(t.TempDir(), "integrity.json")
	os.WriteFile(integ, []byte(`{"verified":true,"files":12,"bytes":4096,"seconds":0.5,"manifest_sha256":"`+strings.Repeat("ab", 32)+`"}`), 0o444)
	c := start(t, Options{Model: models.tiny, ModelSHA256: strings.ToUpper(sum), IntegrityFile: integ})
	_, b := c.call("GET", "/audit", "")
	var a struct {
		SecurityControls struct {
			WeightIntegrity string `json:"weight_integrity"`
		} `json:"security_controls"`
		Integrity struct {
			Verified bool `json:"verified"`
			Files    int  `json:"files"`
		} `json:"integrity"`
	}
	json.Unmarshal(b, &a)
	w := a.SecurityControls.WeightIntegrity
	if !strings.HasPrefix(w, "verified") || !strings.Contains(w, sum[:16]) || !strings.Contains(w, "12 files") || !a.Integrity.Verified || a.Integrity.Files != 12 {
		t.Fatalf("audit %s", b)
	}
}

func TestBadModels(t *testing.T) {
	dir := t.TempDir()
	whole, err := os.ReadFile(models.tiny)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.gguf")
	os.WriteFile(truncated, whole[:len(whole)/2], 0o644)
	headerOnly := filepath.Join(dir, "header.gguf")
	os.WriteFile(headerOnly, whole[:64], 0o644)
	notGGUF := filepath.Join(dir, "notes.txt")
	os.WriteFile(notGGUF, []byte("this is not a model at all, just some text\n"), 0o644)
	empty := filepath.Join(dir, "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	tests := []struct {
		name     string
		opts     Options
		startErr string // error from Start ("" = Start succeeds)
		loadErr  string
	}{
		{"missing", Options{Model: filepath.Join(dir, "nope.gguf")}, "no such file", ""},
		{"no model", Options{}, "no model", ""},
		{"directory", Options{Model: dir}, "", "not a regular file"},
		{"truncated", Options{Model: truncated}, "", "model rejected"},
		{"header only", Options{Model: headerOnly}, "", "model rejected"},
		{"not gguf", Options{Model: notGGUF}, "", "model rejected"},
		{"empty", Options{Model: empty}, "", "model rejected"},
		{"sha mismatch", Options{Model: models.tiny, ModelSHA256: strings.Repeat("0", 64)}, "", "sha256 mismatch"},
		{"sha malformed", Options{Model: models.tiny, ModelSHA256: "abc"}, "64 hex digits", ""},
		{"integrity missing", Options{Model: models.tiny, IntegrityFile: filepath.Join(dir, "none.json")}, "", "integrity file"},
		{"bad gpu layers", Options{Model: models.tiny, GPULayers: "many"}, "-gpu-layers", ""},
		{"listen on every interface", Options{Model: models.tiny, Listen: "0.0.0.0:0"}, "every interface", ""},
		{"listen on a LAN address", Options{Model: models.tiny, Listen: "192.0.2.1:8000"}, "not a loopback", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			if o.Listen == "" {
				o.Listen = "127.0.0.1:0"
			}
			o.APIKeyFile = filepath.Join(t.TempDir(), "key")
			if o.GPULayers == "" {
				o.GPULayers = "0"
			}
			svc, err := Start(context.Background(), o)
			if tt.startErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.startErr) {
					if svc != nil {
						svc.Close(time.Second)
					}
					t.Fatalf("Start: %v, want %q", err, tt.startErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer svc.Close(time.Second)
			err = svc.Load()
			if err == nil || !strings.Contains(err.Error(), tt.loadErr) {
				t.Fatalf("Load: %v, want %q", err, tt.loadErr)
			}
			// The listener stays up and says so.
			resp, err := http.Get("http://" + svc.Addr() + "/health")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), `"status":"error"`) {
				t.Fatalf("health after a failed load: %s", b)
			}
		})
	}
}

func TestSessionReuse(t *testing.T) {
	c := start(t, Options{Model: models.demo})
	id := c.newSession()
	var prev usage
	for turn, text := range []string{"First question, fairly long to give the prompt some tokens.", "Second one.", "Third."} {
		code, out := c.chat(`{"session_id":"` + id + `","temperature":0,"messages":` + userMsg(text) + `}`)
		if code != 200 {
			t.Fatalf("turn %d: %d %+v", turn, code, out.Error)
		}
		if out.SessionID != id || out.Choices[0].Message.Content != demoReply {
			t.Fatalf("turn %d: %+v", turn, out)
		}
		u := *out.Usage
		t.Logf("turn %d: prompt %d cached %d evaluated %d", turn, u.PromptTokens, u.PromptTokensDetails.CachedTokens, u.PromptTokensDetails.EvaluatedTokens)
		if turn > 0 {
			// The prompt holds every earlier turn, but only the new part is evaluated.
			if u.PromptTokens <= prev.PromptTokens+prev.CompletionTokens {
				t.Fatalf("turn %d prompt %d does not extend the conversation (%d+%d)", turn, u.PromptTokens, prev.PromptTokens, prev.CompletionTokens)
			}
			if u.PromptTokensDetails.CachedTokens < prev.PromptTokens || u.PromptTokensDetails.EvaluatedTokens >= u.PromptTokens-prev.PromptTokens {
				t.Fatalf("turn %d: cached %d evaluated %d of %d: KV cache not reused", turn, u.PromptTokensDetails.CachedTokens, u.PromptTokensDetails.EvaluatedTokens, u.PromptTokens)
			}
		}
		prev = u
	}
	if c.metric(`kwyre_tokens_total{kind="cached"}`) <= 0 {
		t.Fatal("cached tokens not counted in /metrics")
	}
	if c.metric("kwyre_active_sessions") != 1 {
		t.Fatal("active sessions not 1")
	}
	// A streamed turn of the same session.
	_, events := c.stream(`{"stream":true,"session_id":"` + id + `","temperature":0,"messages":` + userMsg("Fourth.") + `}`)
	if !strings.Contains(events[0], id) || events[len(events)-1] != "[DONE]" {
		t.Fatalf("streamed session turn: %q", events)
	}
}

func TestSessionWipePaths(t *testing.T) {
	c := start(t, Options{Model: models.demo, IdleTimeout: 300 * time.Millisecond})
	turn := func(id string) (int, completion) {
		return c.chat(`{"session_id":"` + id + `","temperature":0,"messages":` + userMsg("hello") + `}`)
	}

	// /v1/session/end
	id := c.newSession()
	if code, _ := turn(id); code != 200 {
		t.Fatalf("turn: %d", code)
	}
	if code, b := c.call("POST", "/v1/session/end", `{"session_id":"`+id+`"}`); code != 200 {
		t.Fatalf("end: %d %s", code, b)
	}
	if c.metric(`kwyre_session_wipes_total{reason="end"}`) != 1 {
		t.Fatal("end not counted")
	}
	if code, out := turn(id); code != 404 || out.Error.Code != "session_not_found" {
		t.Fatalf("turn after end: %d %+v", code, out.Error)
	}
	if code, _ := c.call("POST", "/v1/session/end", `{"session_id":"`+id+`"}`); code != 404 {
		t.Fatalf("second end: %d", code)
	}
	if code, _ := turn("sess_00000000000000000000000000000000"); code != 404 {
		t.Fatalf("unknown session: %d", code)
	}

	// idle timeout
	id = c.newSession()
	if code, _ := turn(id); code != 200 {
		t.Fatalf("turn: %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.metric(`kwyre_session_wipes_total{reason="idle_timeout"}`) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("idle session not wiped")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := turn(id); code != 404 {
		t.Fatalf("turn after idle timeout: %d", code)
	}

	// wipe all (what SIGUSR1 does; the signal itself is tested on the
	// binary), on a service whose sessions do not time out meanwhile
	c = start(t, Options{Model: models.demo})
	a, b := c.newSession(), c.newSession()
	turn(a)
	if n := c.svc.WipeAll("sigusr1"); n != 2 {
		t.Fatalf("WipeAll wiped %d sessions", n)
	}
	for _, id := range []string{a, b} {
		if code, _ := turn(id); code != 404 {
			t.Fatalf("turn after wipe all: %d", code)
		}
	}
	if code, out := c.chat(`{"temperature":0,"messages":` + userMsg("still serving?") + `}`); code != 200 || out.Choices[0].Message.Content != demoReply {
		t.Fatalf("after wipe all: %d", code)
	}
	if c.metric(`kwyre_session_wipes_total{reason="sigusr1"}`) != 2 ||
		c.metric(`kwyre_wipe_all_total{reason="sigusr1"}`) != 1 || c.metric("kwyre_active_sessions") != 0 {
		_, m := c.call("GET", "/metrics", "")
		t.Fatalf("wipe metrics:\n%s", m)
	}
}

// contextLength reads the per-request context from /v1/models.
func (c *client) contextLength() int {
	c.t.Helper()
	_, b := c.call("GET", "/v1/models", "")
	var m struct {
		Data []struct {
			Context int `json:"context_length"`
		}
	}
	if json.Unmarshal(b, &m) != nil || len(m.Data) != 1 || m.Data[0].Context == 0 {
		c.t.Fatalf("no context_length in %s", b)
	}
	return m.Data[0].Context
}

// longTokens is what longTurn asks for; the tiny model (seed 1) answers
// the prompt "a" greedily without ever producing end-of-turn, so a turn runs
// until max_tokens unless something stops it.
const longTokens = 1900

func longTurn(sessionID string) string {
	s := ""
	if sessionID != "" {
		s = `"session_id":"` + sessionID + `",`
	}
	return `{` + s + `"stream":true,"max_tokens":1900,"temperature":0,"messages":` + userMsg("a") + `}`
}

// TestLongTurnRunsToLength checks the premise of the tests that stop a
// generation: left alone, longTurn generates longTokens tokens.
func TestLongTurnRunsToLength(t *testing.T) {
	c := start(t, Options{Model: models.tiny, Ctx: 2048, Slots: 1})
	_, events := c.stream(longTurn(""))
	var last completion
	json.Unmarshal([]byte(events[len(events)-2]), &last)
	if last.Usage == nil || last.Usage.CompletionTokens != longTokens || *last.Choices[0].FinishReason != "length" {
		t.Fatalf("long turn ended with %s", events[len(events)-2])
	}
}

// TestWipeDuringGeneration ends a session, and wipes everything, while a
// turn is generating: the turn stops at once and the wipe does not wait for
// it to finish on its own.
func TestWipeDuringGeneration(t *testing.T) {
	c := start(t, Options{Model: models.tiny, Ctx: 2048, Slots: 1})
	long := func(id string) (*http.Response, chan []string) {
		resp := c.request(context.Background(), "POST", "/v1/chat/completions", longTurn(id))
		out := make(chan []string, 1)
		go func() {
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out <- strings.Split(strings.TrimSpace(string(b)), "\n\n")
		}()
		return resp, out
	}
	for _, how := range []string{"end", "wipe-all"} {
		t.Run(how, func(t *testing.T) {
			id := c.newSession()
			_, events := long(id)
			time.Sleep(100 * time.Millisecond) // let it generate a little
			start := time.Now()
			if how == "end" {
				if code, b := c.call("POST", "/v1/session/end", `{"session_id":"`+id+`"}`); code != 200 {
					t.Fatalf("end: %d %s", code, b)
				}
			} else {
				c.svc.WipeAll("sigusr1")
			}
			var got []string
			select {
			case got = <-events:
			case <-time.After(30 * time.Second):
				t.Fatal("stream did not stop after the wipe")
			}
			t.Logf("%s: wipe returned after %v, stream had %d events", how, time.Since(start), len(got))
			last := got[len(got)-1]
			if !strings.Contains(last, `"code":"wiped"`) || strings.Contains(last, "[DONE]") {
				t.Fatalf("stream ended with %q, want a wiped error event", last)
			}
			if code, _ := c.chat(`{"session_id":"` + id + `","messages":` + userMsg("x") + `}`); code != 404 {
				t.Fatalf("session after wipe: %d", code)
			}
		})
	}
	if n := c.metric(`kwyre_tokens_total{kind="completion"}`); n >= longTokens {
		t.Fatalf("%v tokens: a wiped generation ran to the end", n)
	}
}

func TestContextLimits(t *testing.T) {
	c := start(t, Options{Model: models.tiny, Ctx: 256})
	ctx := c.contextLength()
	if ctx != 256 {
		t.Fatalf("context %d, asked for 256", ctx)
	}
	long := strings.Repeat("many words here ", ctx/2)
	code, out := c.chat(`{"messages":` + userMsg(long) + `}`)
	if code != 400 || out.Error == nil || out.Error.Code != "context_length_exceeded" || !strings.Contains(out.Error.Message, strconv.Itoa(ctx)) {
		t.Fatalf("over-long prompt: %d %+v", code, out.Error)
	}
	if strings.Contains(out.Error.Message, "many words") {
		t.Fatal("error quotes the content")
	}
	code, out = c.chat(`{"max_tokens":` + strconv.Itoa(ctx-4) + `,"messages":` + userMsg("hi") + `}`)
	if code != 400 || out.Error.Param != "max_tokens" || out.Error.Code != "context_length_exceeded" {
		t.Fatalf("prompt + max_tokens over ctx: %d %+v", code, out.Error)
	}
	code, out = c.chat(`{"max_tokens":` + strconv.Itoa(ctx+1) + `,"messages":` + userMsg("hi") + `}`)
	if code != 400 || out.Error.Param != "max_tokens" || out.Error.Code != "limit_exceeded" {
		t.Fatalf("max_tokens over the limit: %d %+v", code, out.Error)
	}
	// Without max_tokens the answer may use the rest of the context, no more.
	code, out = c.chat(`{"temperature":1,"seed":5,"messages":` + userMsg("hi") + `}`)
	if code != 200 || out.Usage.PromptTokens+out.Usage.CompletionTokens > ctx {
		t.Fatalf("open-ended answer: %d %+v", code, out.Usage)
	}
	// A session whose conversation outgrows the context gets a clear 400.
	id := c.newSession()
	turn := `{"session_id":"` + id + `","max_tokens":4,"messages":` + userMsg(strings.Repeat("more words ", 12)) + `}`
	for i := 0; ; i++ {
		code, out = c.chat(turn)
		if code == 400 {
			if out.Error.Code != "context_length_exceeded" || !strings.Contains(out.Error.Message, "session") {
				t.Fatalf("full session: %+v", out.Error)
			}
			break
		}
		if code != 200 || i > 40 {
			t.Fatalf("turn %d: %d %+v", i, code, out.Error)
		}
	}
}

func TestMalformedRequests(t *testing.T) {
	c := start(t, Options{Model: models.tiny})
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"empty body", ``, 400},
		{"truncated json", `{"messages":[`, 400},
		{"array body", `[]`, 400},
		{"no messages", `{"messages":[]}`, 400},
		{"bad role", `{"messages":[{"role":"robot","content":"x"}]}`, 400},
		{"bad escape", `{"messages":[{"role":"user","content":"\q"}]}`, 400},
		{"temperature string", `{"temperature":"hot","messages":` + userMsg("x") + `}`, 400},
		{"unknown session", `{"session_id":"sess_ffffffffffffffffffffffffffffffff","messages":` + userMsg("x") + `}`, 404},
		{"garbage session", `{"session_id":"../etc","messages":` + userMsg("x") + `}`, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := c.chat(tt.body)
			if code != tt.status || out.Error == nil || out.Error.Message == "" {
				t.Fatalf("status %d %+v, want %d", code, out.Error, tt.status)
			}
		})
	}
	big := `{"messages":` + userMsg(strings.Repeat("x", 5<<20)) + `}`
	if code, _ := c.chat(big); code != 413 {
		t.Fatalf("5 MiB body: %d", code)
	}
	// The service still answers.
	if code, _ := c.chat(`{"max_tokens":2,"messages":` + userMsg("ok?") + `}`); code != 200 {
		t.Fatalf("after malformed requests: %d", code)
	}
}

func TestClientDisconnectStopsGeneration(t *testing.T) {
	c := start(t, Options{Model: models.tiny, Ctx: 2048, Slots: 1})
	ctx, cancel := context.WithCancel(context.Background())
	resp := c.request(ctx, "POST", "/v1/chat/completions",
		longTurn(""))
	buf := make([]byte, 512)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(20 * time.Second)
	for c.metric("kwyre_client_disconnects_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("disconnect not noticed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := c.metric(`kwyre_tokens_total{kind="completion"}`); n >= longTokens {
		t.Fatalf("%v tokens generated after the client left", n)
	}
	// The slot is free again.
	if code, _ := c.chat(`{"max_tokens":2,"messages":` + userMsg("next") + `}`); code != 200 {
		t.Fatalf("next request: %d", code)
	}
}

func TestQueueing(t *testing.T) {
	lim := api.DefaultLimits()
	lim.QueueTimeout = 200 * time.Millisecond
	c := start(t, Options{Model: models.tiny, Ctx: 2048, Slots: 1, Limits: lim})

	// A long generation holds the only slot; a second request gives up with 503.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := c.request(ctx, "POST", "/v1/chat/completions",
		longTurn(""))
	defer resp.Body.Close()
	resp.Body.Read(make([]byte, 256))
	r2 := c.request(context.Background(), "POST", "/v1/chat/completions", `{"max_tokens":2,"messages":`+userMsg("short")+`}`)
	io.Copy(io.Discard, r2.Body)
	r2.Body.Close()
	if r2.StatusCode != 503 || r2.Header.Get("Retry-After") == "" {
		t.Fatalf("queued request: %d, Retry-After %q", r2.StatusCode, r2.Header.Get("Retry-After"))
	}
	cancel()
	if c.metric("kwyre_queue_rejections_total") != 1 {
		t.Fatal("rejection not counted")
	}
}

func TestConcurrentRequestsAllServed(t *testing.T) {
	c := start(t, Options{Model: models.demo, Slots: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := `{"temperature":0,"messages":` + userMsg("parallel") + `}`
			if i%2 == 1 {
				body = `{"stream":true,"temperature":0,"messages":` + userMsg("parallel") + `}`
			}
			resp := c.request(context.Background(), "POST", "/v1/chat/completions", body)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- errors.New(resp.Status)
				return
			}
			if i%2 == 0 && !strings.Contains(string(b), demoReply) {
				errs <- errors.New("wrong reply")
			}
		}(i)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("requests deadlocked")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestAuthAndHostOnRealService(t *testing.T) {
	c := start(t, Options{Model: models.demo})
	port := c.base[strings.LastIndex(c.base, ":")+1:]
	tests := []struct {
		key, host string
		status    int
	}{
		{"", "", 401},
		{"not-the-key-at-all-000", "", 401},
		{c.key, "", 200},
		{c.key, "evil.example:" + port, 403},
		{c.key, "localhost:" + port, 200},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("POST", c.base+"/v1/chat/completions", strings.NewReader(`{"temperature":0,"messages":`+userMsg("hi")+`}`))
		if tt.key != "" {
			req.Header.Set("Authorization", "Bearer "+tt.key)
		}
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Fatalf("key %q host %q: %d %s", tt.key, tt.host, resp.StatusCode, b)
		}
		if tt.status != 200 && strings.Contains(string(b), "Kwyre demo") {
			t.Fatal("refused request still generated")
		}
	}
}
