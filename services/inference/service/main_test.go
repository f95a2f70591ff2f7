package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kwyre/kwyre/tools/testmodel"
)

// models holds the tiny and demo models, generated once for the package.
var models struct {
	dir, tiny, demo string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kwyre-service-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	models.dir = dir
	models.tiny = filepath.Join(dir, "tiny.gguf")
	models.demo = filepath.Join(dir, "demo.gguf")
	for path, preset := range map[string]string{models.tiny: "tiny", models.demo: "demo"} {
		if err := testmodel.WriteFile(path, testmodel.Options{Preset: preset, Seed: 1}); err != nil {
			fmt.Fprintln(os.Stderr, "generate test model:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// client talks to one running service.
type client struct {
	t    testing.TB
	base string
	key  string
	svc  *Service
}

// start runs a service in-process with the real engine and waits until
// the model is loaded.
func start(t testing.TB, o Options) *client {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.APIKeyFile == "" {
		o.APIKeyFile = filepath.Join(t.TempDir(), "api-key")
	}
	if o.GPULayers == "" {
		o.GPULayers = "0"
	}
	if o.Threads == 0 {
		// One thread: on a shared, busy CI machine ggml's spinning thread
		// pool is many times slower than a single thread.
		o.Threads = 1
	}
	svc, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { svc.Close(5 * time.Second) })
	if err := svc.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
	key, err := os.ReadFile(svc.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: "http://" + svc.Addr(), key: strings.TrimSpace(string(key)), svc: svc}
}

func (c *client) request(ctx context.Context, method, path, body string) *http.Response {
	c.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// call does a request and returns the status and body.
func (c *client) call(method, path, body string) (int, []byte) {
	c.t.Helper()
	resp := c.request(context.Background(), method, path, body)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

type usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens    int `json:"cached_tokens"`
		EvaluatedTokens int `json:"evaluated_tokens"`
	} `json:"prompt_tokens_details"`
}

type completion struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Model     string `json:"model"`
	SessionID string `json:"session_id"`
	Choices   []struct {
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
	Error *struct {
		Message string `json:"message"`
		Code    string `json:"code"`
		Param   string `json:"param"`
	} `json:"error"`
}

// chat sends a non-streamed chat request and decodes the answer.
func (c *client) chat(body string) (int, completion) {
	c.t.Helper()
	code, b := c.call("POST", "/v1/chat/completions", body)
	var out completion
	if err := json.Unmarshal(b, &out); err != nil {
		c.t.Fatalf("chat answer %d is not JSON: %v: %s", code, err, b)
	}
	return code, out
}

// stream sends a streamed chat request and returns every data payload.
func (c *client) stream(body string) (*http.Response, []string) {
	c.t.Helper()
	resp := c.request(context.Background(), "POST", "/v1/chat/completions", body)
	defer resp.Body.Close()
	return resp, readEvents(c.t, resp.Body)
}

// readEvents splits an SSE body into data payloads, checking the framing:
// every event is one `data: ` line followed by a blank line.
func readEvents(t testing.TB, r io.Reader) []string {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(r)
	expectBlank := false
	for sc.Scan() {
		line := sc.Text()
		if expectBlank {
			if line != "" {
				t.Fatalf("event not followed by a blank line: %q", line)
			}
			expectBlank = false
			continue
		}
		expectBlank = true
		if strings.HasPrefix(line, ":") {
			continue // a comment (the padding that scrubs net/http's buffers)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line is not a data line: %q", line)
		}
		events = append(events, data)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

// metric returns the value of one sample line of /metrics (name with labels).
func (c *client) metric(sample string) float64 {
	c.t.Helper()
	_, b := c.call("GET", "/metrics", "")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

func (c *client) newSession() string {
	c.t.Helper()
	code, b := c.call("POST", "/v1/session", "")
	var r struct {
		SessionID string `json:"session_id"`
	}
	if code != 200 || json.Unmarshal(b, &r) != nil || r.SessionID == "" {
		c.t.Fatalf("POST /v1/session: %d %s", code, b)
	}
	return r.SessionID
}

func userMsg(text string) string {
	b, _ := json.Marshal(text)
	return `[{"role":"user","content":` + string(b) + `}]`
}

var demoReply = testmodel.DemoReply

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
