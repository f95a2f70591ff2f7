package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8000", true},
		{"http://127.0.0.1:8000/", true},
		{"http://localhost:8000", true},
		{"http://[::1]:8000", true},
		{"http://127.9.9.9:1", true},
		{"https://127.0.0.1:8000", false},
		{"http://10.0.0.1:8000", false},
		{"http://0.0.0.0:8000", false},
		{"http://example.com:8000", false},
		{"http://127.0.0.1", false},
		{"http://user@127.0.0.1:8000", false},
		{"http://127.0.0.1:8000/v1", false},
		{"127.0.0.1:8000", false},
		{"://", false},
	}
	for _, tt := range tests {
		_, err := New(tt.url, []byte("k"))
		if (err == nil) != tt.ok {
			t.Errorf("New(%q) error = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

func TestDialLoopbackRefusesOthers(t *testing.T) {
	for _, addr := range []string{"10.1.2.3:80", "8.8.8.8:53", "example.com:80", "[2001:db8::1]:80"} {
		if _, err := dialLoopback(context.Background(), "tcp", addr); err == nil || !strings.Contains(err.Error(), "non-loopback") {
			t.Errorf("dialLoopback(%s) = %v, want a refusal", addr, err)
		}
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o400); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, content, want string
		wantErr             string
	}{
		{"plain", "abc123", "abc123", ""},
		{"newline", "abc123\n", "abc123", ""},
		{"spaces", "  abc123 \r\n", "abc123", ""},
		{"empty", "\n", "", "empty"},
		{"inner space", "ab c", "", "not allowed"},
		{"too long", strings.Repeat("k", maxKeyFile+1), "", "longer than"},
	}
	for _, tt := range tests {
		got, err := ReadKeyFile(write(tt.name, tt.content))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want not-exist", err)
	}
}

// serve runs h on a loopback test server and returns a client for it.
func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, []byte("test-key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestErrorAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		header  map[string]string
		check   func(error) bool
		describ string
	}{
		{"unauthorized", 401, `{"error":{"message":"missing or wrong API key","type":"authentication_error"}}`, nil, IsUnauthorized, "API key rejected (401)"},
		{"too many", 429, `{"error":{"message":"queue full"}}`, map[string]string{"Retry-After": "3"}, IsBusy, "service busy (429), try again in 3s"},
		{"unavailable", 503, `{"error":{"message":"still loading"}}`, nil, IsBusy, "service busy (503), try again"},
		{"session gone", 404, `{"error":{"message":"unknown session_id"}}`, nil, IsSessionGone, "session ended by the service"},
		{"context full", 400, `{"error":{"message":"conversation exceeds the context (2048 tokens)","type":"invalid_request_error","code":"context_length_exceeded"}}`, nil, IsContextFull, "context full: start a new session"},
		{"plain text", 500, "internal trouble\nmore", nil, func(err error) bool { return !IsBusy(err) && !IsContextFull(err) }, "error 500: internal trouble"},
		{"string error", 400, `{"error":"max_tokens over the limit"}`, nil, func(err error) bool { return !IsContextFull(err) }, "error 400: max_tokens over the limit"},
	}
	for _, tt := range tests {
		c := serve(t, func(w http.ResponseWriter, r *http.Request) {
			for k, v := range tt.header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(tt.status)
			io.WriteString(w, tt.body)
		})
		_, err := c.Chat(context.Background(), "s1", []byte("hi"), func([]byte) error { return nil })
		if err == nil || !tt.check(err) {
			t.Errorf("%s: err = %v, classified wrong", tt.name, err)
			continue
		}
		if d := Describe(err); d != tt.describ {
			t.Errorf("%s: Describe = %q, want %q", tt.name, d, tt.describ)
		}
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	c, err := New(url, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Health(context.Background())
	if !IsUnavailable(err) {
		t.Fatalf("Health on a closed port: %v, want unavailable", err)
	}
	if Describe(err) != "inference service unreachable, retrying" {
		t.Fatalf("Describe = %q", Describe(err))
	}
}

func sseHandler(events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
	}
}

func delta(s string) string {
	return fmt.Sprintf("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},\"finish_reason\":null}]}\n\n", appendJSONString(nil, []byte(s)))
}

func TestChatStreams(t *testing.T) {
	var gotBody, gotAuth string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotAuth = string(b), r.Header.Get("Authorization")
		sseHandler(
			": ping\n\n",
			`data: {"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}`+"\n\n",
			delta("Hel"), delta("lo, \"wörld\"\n"), delta("🙂"),
			`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":7}}}`+"\n\n",
			"data: [DONE]\n\n",
		)(w, r)
	})
	var reply strings.Builder
	res, err := c.Chat(context.Background(), "sess-1", []byte("say \"hi\"\n"), func(p []byte) error {
		reply.Write(p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if reply.String() != "Hello, \"wörld\"\n🙂" {
		t.Errorf("reply = %q", reply.String())
	}
	want := ChatResult{FinishReason: "stop", PromptTokens: 12, CompletionTokens: 5, CachedTokens: 7}
	if res != want {
		t.Errorf("result = %+v, want %+v", res, want)
	}
	if gotAuth != "Bearer test-key" {
		t.Errorf("Authorization = %q", gotAuth)
	}
	if gotBody != `{"stream":true,"session_id":"sess-1","messages":[{"role":"user","content":"say \"hi\"\n"}]}` {
		t.Errorf("request body = %s", gotBody)
	}
}

func TestChatStreamFailures(t *testing.T) {
	tests := []struct {
		name   string
		events []string
		check  func(error) bool
	}{
		{"no done", []string{delta("a")}, IsUnavailable},
		{"error event", []string{delta("a"), `data: {"error":{"message":"context is full","code":"context_length_exceeded"}}` + "\n\n"}, IsContextFull},
		{"bad json", []string{"data: {not json\n\n"}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "malformed") }},
		{"bad content", []string{`data: {"choices":[{"delta":{"content":"\q"}}]}` + "\n\n"}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "malformed") }},
	}
	for _, tt := range tests {
		c := serve(t, sseHandler(tt.events...))
		_, err := c.Chat(context.Background(), "s", []byte("x"), func([]byte) error { return nil })
		if !tt.check(err) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func TestChatEmitErrorStops(t *testing.T) {
	c := serve(t, sseHandler(delta("a"), delta("b"), "data: [DONE]\n\n"))
	stop := errors.New("stop")
	n := 0
	_, err := c.Chat(context.Background(), "s", []byte("x"), func([]byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err = %v after %d pieces, want stop after 1", err, n)
	}
}

func TestChatCancel(t *testing.T) {
	release := make(chan struct{})
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, delta("first"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Chat(ctx, "s", []byte("x"), func([]byte) error { cancel(); return nil })
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Chat did not return after cancel")
	}
}

func TestNonStreamedAnswer(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"whole reply"},"finish_reason":"stop"}]}`)
	})
	var got strings.Builder
	res, err := c.Chat(context.Background(), "s", []byte("x"), func(p []byte) error { got.Write(p); return nil })
	if err != nil || got.String() != "whole reply" || res.FinishReason != "stop" {
		t.Fatalf("got %q %+v %v", got.String(), res, err)
	}
}

func TestSessionCalls(t *testing.T) {
	var ended string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/session":
			io.WriteString(w, `{"session_id":"abc"}`)
		case "/v1/session/end":
			b, _ := io.ReadAll(r.Body)
			ended = string(b)
			if strings.Contains(ended, "gone") {
				w.WriteHeader(404)
				io.WriteString(w, `{"error":{"message":"unknown session"}}`)
				return
			}
			io.WriteString(w, `{"ended":true}`)
		}
	})
	id, err := c.NewSession(context.Background())
	if err != nil || id != "abc" {
		t.Fatalf("NewSession = %q, %v", id, err)
	}
	if err := c.EndSession(context.Background(), id); err != nil || ended != `{"session_id":"abc"}` {
		t.Fatalf("EndSession: %v, body %s", err, ended)
	}
	if err := c.EndSession(context.Background(), "gone"); err != nil {
		t.Fatalf("EndSession of an unknown session: %v, want nil", err)
	}
}

func TestHealthAndAuditLabels(t *testing.T) {
	tests := []struct {
		health, backend string
	}{
		{`{"status":"ready","progress":1,"model":"m","gpu":"NVIDIA H100"}`, "GPU NVIDIA H100"},
		{`{"status":"ready","progress":1,"model":"m","gpu":""}`, "CPU"},
		{`{"status":"ready","progress":1,"model":"m","gpu":"cpu"}`, "CPU"},
		{`{"status":"ready","progress":1,"model":"m"}`, "CPU"},
		{`{"status":"ready","progress":1,"model":"m","gpu":null}`, "CPU"},
		{`{"status":"ready","progress":1,"model":"m","gpu":true}`, "GPU"},
		{`{"status":"ready","progress":1,"model":"m","gpu":{"name":"RTX 4090","layers":33}}`, "GPU RTX 4090"},
		{`{"status":"ready","progress":1,"model":"m","gpu":{"available":false}}`, "CPU"},
	}
	for _, tt := range tests {
		c := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tt.health) })
		h, err := c.Health(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := h.Backend(); got != tt.backend {
			t.Errorf("%s: Backend = %q, want %q", tt.health, got, tt.backend)
		}
	}

	audits := []struct {
		body     string
		verified bool
		label    string
		watchdog string
	}{
		{`{"security_controls":{"weight_integrity":"enabled","intrusion_watchdog":{"running":true,"triggered":false}}}`, true, "integrity verified", "watchdog on"},
		{`{"security_controls":{"weight_integrity":"verified (manifest, 12 files)","intrusion_watchdog":{"running":false}}}`, true, "integrity verified", "watchdog off"},
		{`{"security_controls":{"weight_integrity":"structure check only","intrusion_watchdog":{"running":true,"triggered":true}}}`, false, "integrity: structure check only", "WATCHDOG TRIGGERED"},
		{`{"security_controls":{"weight_integrity":"structure-only: GGUF header, metadata and tensor shapes checked; no hash pinned"}}`, false, "integrity: structure-only", "watchdog off"},
		{`{"security_controls":{"weight_integrity":"verified: sha256 pinned by -model-sha256; GGUF structure checked"}}`, true, "integrity verified", "watchdog off"},
		{`{"integrity":{"verified":true,"files":9},"security_controls":{"weight_integrity":"x"}}`, true, "integrity verified", "watchdog off"},
		{`{"integrity":{"verified":false},"security_controls":{"weight_integrity":"enabled"}}`, false, "integrity NOT verified", "watchdog off"},
		{`{"security_controls":{"weight_integrity":{"verified":true}}}`, true, "integrity verified", "watchdog off"},
		{`{}`, false, "integrity unknown", "watchdog off"},
	}
	nets := []struct{ drivers, label string }{
		{"none (CONFIG_NETDEVICES not set; no net devices besides lo)", "no network"},
		{"present: virtio_net (eth0) (no /proc/config.gz)", "NETWORK DRIVER virtio_net"},
		{"", "network ?"},
		{"unknown: /sys unreadable", "network: unknown: /sys unreadable"},
	}
	for _, n := range nets {
		var a Audit
		a.SecurityControls.NetworkDrivers = n.drivers
		ok, l := a.Network()
		if l != n.label || ok != (n.label == "no network") {
			t.Errorf("network_drivers %q: got %v %q, want %q", n.drivers, ok, l, n.label)
		}
	}
	for _, tt := range audits {
		c := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tt.body) })
		a, err := c.Audit(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		v, l := a.IntegrityVerified()
		if v != tt.verified || l != tt.label || a.Watchdog() != tt.watchdog {
			t.Errorf("%s: got %v %q %q", tt.body, v, l, a.Watchdog())
		}
	}
}

// SetKey while requests run (a 401 makes the consoles re-read the key file).
func TestSetKeyConcurrent(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer new" {
			w.WriteHeader(401)
			return
		}
		io.WriteString(w, `{"status":"ready"}`)
	})
	c.SetKey([]byte("old"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			c.Audit(context.Background())
		}
	}()
	c.SetKey([]byte("new"))
	<-done
	if _, err := c.Audit(context.Background()); err != nil {
		t.Fatalf("after SetKey: %v", err)
	}
}
