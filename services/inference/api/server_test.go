package api

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startServer serves a Server with no engine (the model "loading") on a
// loopback port: enough for everything before generation.
func startServer(t *testing.T, cfg Config) (*Server, string, string) {
	t.Helper()
	keyPath, digest, err := CreateKey(filepath.Join(t.TempDir(), "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Key = digest
	s := New(cfg)
	ln, err := ListenLoopback(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		<-done
	})
	return s, "http://" + ln.Addr().String(), strings.TrimSpace(string(key))
}

func do(t *testing.T, method, url, key, host, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestAuthAndHost(t *testing.T) {
	_, url, key := startServer(t, Config{ModelName: "m"})
	port := url[strings.LastIndex(url, ":")+1:]
	tests := []struct {
		name   string
		path   string
		key    string
		host   string
		status int
	}{
		{"health needs no key", "/health", "", "", 200},
		{"models without key", "/v1/models", "", "", 401},
		{"models wrong key", "/v1/models", "wrong-key-0123456789", "", 401},
		{"models key prefix", "/v1/models", key[:len(key)-1], "", 401},
		{"models right key", "/v1/models", key, "", 200},
		{"localhost host", "/v1/models", key, "localhost:" + port, 200},
		{"LOCALHOST host", "/v1/models", key, "LOCALHOST:" + port, 200},
		{"ipv6 host", "/v1/models", key, "[::1]:" + port, 200},
		{"rebinding host", "/v1/models", key, "attacker.example:" + port, 403},
		{"other port", "/v1/models", key, "127.0.0.1:1", 403},
		{"no port", "/v1/models", key, "127.0.0.1", 403},
		{"health with bad host", "/health", "", "evil.example", 403},
		{"audit without key", "/audit", "", "", 401},
		{"metrics without key", "/metrics", "", "", 401},
		{"unknown path without key", "/v1/embeddings", "", "", 401},
		{"unknown path", "/v1/embeddings", key, "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "GET", url+tt.path, tt.key, tt.host, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			for h := range resp.Header {
				if strings.HasPrefix(strings.ToLower(h), "access-control-") {
					t.Fatalf("CORS header %s sent", h)
				}
			}
		})
	}
}

func TestNoCORSPreflight(t *testing.T) {
	_, url, key := startServer(t, Config{ModelName: "m"})
	req, _ := http.NewRequest("OPTIONS", url+"/v1/chat/completions", nil)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("preflight status %d", resp.StatusCode)
	}
	for h := range resp.Header {
		if strings.HasPrefix(strings.ToLower(h), "access-control-") {
			t.Fatalf("CORS header %s sent", h)
		}
	}
}

func TestLoadingState(t *testing.T) {
	s, url, key := startServer(t, Config{ModelName: "tiny.gguf", GPU: "none"})
	s.SetProgress(0.25)
	resp, body := do(t, "GET", url+"/health", "", "", "")
	var h struct {
		Status   string
		Progress float64
		Model    string
		GPU      string
	}
	if err := json.Unmarshal(body, &h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("health %d %s", resp.StatusCode, body)
	}
	if h.Status != "loading" || h.Progress != 0.25 || h.Model != "tiny.gguf" || h.GPU != "none" {
		t.Fatalf("health = %+v", h)
	}
	resp, body = do(t, "POST", url+"/v1/chat/completions", key, "", `{"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("chat while loading: %d %s", resp.StatusCode, body)
	}
	s.SetFailed()
	_, body = do(t, "GET", url+"/health", "", "", "")
	if !strings.Contains(string(body), `"status":"error"`) {
		t.Fatalf("health after failure: %s", body)
	}
}

func TestMethodsAndSessionsWithoutModel(t *testing.T) {
	cfg := Config{ModelName: "m"}
	cfg.Limits = DefaultLimits()
	cfg.Limits.MaxSessions = 2
	s, url, key := startServer(t, cfg)
	if resp, _ := do(t, "GET", url+"/v1/chat/completions", key, "", ""); resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET chat: %d", resp.StatusCode)
	}
	var ids []string
	for i := 0; i < 2; i++ {
		resp, body := do(t, "POST", url+"/v1/session", key, "", "")
		var r struct {
			SessionID string `json:"session_id"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &r) != nil || r.SessionID == "" {
			t.Fatalf("create session: %d %s", resp.StatusCode, body)
		}
		ids = append(ids, r.SessionID)
	}
	if resp, body := do(t, "POST", url+"/v1/session", key, "", ""); resp.StatusCode != 429 || !strings.Contains(string(body), "max_sessions") {
		t.Fatalf("third session: %d %s", resp.StatusCode, body)
	}
	if s.Sessions().Len() != 2 {
		t.Fatalf("table holds %d", s.Sessions().Len())
	}
	tests := []struct {
		body   string
		status int
	}{
		{`{"session_id":"` + ids[0] + `"}`, 200},
		{`{"session_id":"` + ids[0] + `"}`, 404},
		{`{"session_id":"sess_00000000000000000000000000000000"}`, 404},
		{`{"session_id":"nonsense"}`, 404},
		{`{}`, 400},
		{`{"session_id":`, 400},
		{`{"session_id":5}`, 400},
	}
	for _, tt := range tests {
		resp, body := do(t, "POST", url+"/v1/session/end", key, "", tt.body)
		if resp.StatusCode != tt.status {
			t.Fatalf("end %s: %d %s", tt.body, resp.StatusCode, body)
		}
	}
	// A chat naming an ended session is a 404 once the model is loaded;
	// while it loads it is a 503 (checked first).
	_, body := do(t, "GET", url+"/metrics", key, "", "")
	for _, want := range []string{
		`kwyre_requests_total{endpoint="/v1/session",code="200"} 2`,
		`kwyre_requests_total{endpoint="/v1/session",code="429"} 1`,
		`kwyre_requests_total{endpoint="/v1/session/end",code="404"} 3`,
		`kwyre_session_wipes_total{reason="end"} 1`,
		`kwyre_active_sessions 1`,
		`kwyre_model_load_seconds 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if n := s.WipeAll("sigusr1"); n != 1 {
		t.Fatalf("WipeAll wiped %d", n)
	}
	_, body = do(t, "GET", url+"/metrics", key, "", "")
	for _, want := range []string{`kwyre_session_wipes_total{reason="sigusr1"} 1`, `kwyre_wipe_all_total{reason="sigusr1"} 1`, `kwyre_active_sessions 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestAuditReadsTheSystem(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	cfg := Config{
		ModelName:           "m",
		IdleTimeout:         90 * time.Minute,
		WeightIntegrity:     "verified: test",
		ConversationStorage: "RAM-only (test)",
		WatchdogStateFile:   state,
		WatchdogInterval:    5 * time.Second,
		IntegrityReport:     map[string]any{"verified": true, "files": 3},
	}
	cfg.ProcRoot, cfg.SysRoot = fakeSys{config: "kwyre.config"}.write(t)
	s, url, key := startServer(t, cfg)
	s.Sessions().Create()
	type audit struct {
		Server           string
		Timestamp        string
		ActiveSessions   int `json:"active_sessions"`
		SecurityControls struct {
			NetworkBinding string `json:"network_binding"`
			NetworkDrivers string `json:"network_drivers"`
			NetworkKernel  struct {
				ConfigSource string            `json:"config_source"`
				Config       map[string]string `json:"config"`
				Hardware     []NetHardware     `json:"hardware"`
			} `json:"network_kernel"`
			WeightIntegrity     string         `json:"weight_integrity"`
			ConversationStorage string         `json:"conversation_storage"`
			SessionWipe         string         `json:"session_wipe"`
			IntrusionWatchdog   WatchdogStatus `json:"intrusion_watchdog"`
			ContentLogging      string         `json:"content_logging"`
			FreedMemory         string         `json:"freed_memory"`
		} `json:"security_controls"`
		Integrity map[string]any
	}
	get := func() audit {
		resp, body := do(t, "GET", url+"/audit", key, "", "")
		var a audit
		if resp.StatusCode != 200 || json.Unmarshal(body, &a) != nil {
			t.Fatalf("audit %d %s", resp.StatusCode, body)
		}
		return a
	}
	a := get()
	host := strings.TrimPrefix(url, "http://")
	// TestMain runs the package's tests with GODEBUG=clobberfree=1.
	if !strings.HasPrefix(a.SecurityControls.FreedMemory, "overwritten by the garbage collector") {
		t.Errorf("freed_memory %q", a.SecurityControls.FreedMemory)
	}
	if a.SecurityControls.NetworkBinding != host+" (localhost only)" {
		t.Fatalf("binding %q, listener %s", a.SecurityControls.NetworkBinding, host)
	}
	if a.ActiveSessions != 1 || a.SecurityControls.WeightIntegrity != "verified: test" ||
		a.SecurityControls.SessionWipe != "on_close + idle_timeout_90min + shutdown + intrusion" ||
		a.SecurityControls.ContentLogging != "NEVER" || a.Integrity["verified"] != true {
		t.Fatalf("audit = %+v", a)
	}
	if nk := a.SecurityControls.NetworkKernel; a.SecurityControls.NetworkDrivers != "none (CONFIG_NETDEVICES not set; no net devices besides lo)" ||
		nk.ConfigSource != "/proc/config.gz" || nk.Config["CONFIG_NETDEVICES"] != "not set" || len(nk.Hardware) != 2 {
		t.Fatalf("network drivers %q, %+v", a.SecurityControls.NetworkDrivers, nk)
	}
	if ts, err := time.Parse(time.RFC3339, a.Timestamp); err != nil || time.Since(ts) > time.Minute {
		t.Fatalf("timestamp %q", a.Timestamp)
	}
	if a.SecurityControls.IntrusionWatchdog.Running {
		t.Fatal("watchdog running without a state file")
	}

	tests := []struct {
		name      string
		state     string
		running   bool
		triggered bool
	}{
		{"fresh", `{"running":true,"triggered":false,"last_scan":"` + time.Now().UTC().Format(time.RFC3339) + `","scans":4,"findings":[],"skipped":["gpu: no driver"]}`, true, false},
		{"stale", `{"running":true,"triggered":false,"last_scan":"` + time.Now().Add(-11*time.Second).UTC().Format(time.RFC3339) + `","scans":4}`, false, false},
		{"triggered", `{"running":true,"triggered":true,"last_scan":"` + time.Now().UTC().Format(time.RFC3339) + `","scans":9,"findings":[{"scanner":"tracer","what":"pid 9"}]}`, true, true},
		{"stopped", `{"running":false,"triggered":false,"last_scan":"` + time.Now().UTC().Format(time.RFC3339) + `"}`, false, false},
		{"malformed", `{"running":tr`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(state, []byte(tt.state), 0o644); err != nil {
				t.Fatal(err)
			}
			w := get().SecurityControls.IntrusionWatchdog
			if w.Running != tt.running || w.Triggered != tt.triggered {
				t.Fatalf("watchdog = %+v", w)
			}
		})
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"good", write("good", "0123456789abcdef0123\n", 0o600), ""},
		{"read-only owner", write("ro", "0123456789abcdef0123", 0o400), ""},
		{"group readable", write("grp", "0123456789abcdef0123", 0o640), "group or others"},
		{"world readable", write("world", "0123456789abcdef0123", 0o604), "group or others"},
		{"short", write("short", "abc", 0o600), "shorter"},
		{"empty", write("empty", "", 0o600), "read"},
		{"inner space", write("space", "0123456789 abcdef0123", 0o600), "whitespace"},
		{"directory", dir, "not a regular file"},
		{"missing", filepath.Join(dir, "nope"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKey(tt.path)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "0123456789") {
				t.Fatal("error quotes the key")
			}
		})
	}

	// A missing file is created (0600) and loads back to the same digest.
	p := filepath.Join(dir, "new-key")
	used, d, created, err := LoadOrCreateKey(p)
	if err != nil || !created || used != p {
		t.Fatalf("LoadOrCreateKey: %v created=%v used=%s", err, created, used)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("new key mode %#o", st.Mode().Perm())
	}
	_, d2, created2, err := LoadOrCreateKey(p)
	if err != nil || created2 || d2 != d {
		t.Fatalf("reload: %v created=%v same=%v", err, created2, d2 == d)
	}
	// An unreadable existing file is an error, not silently replaced.
	bad := write("bad", "0123456789abcdef0123", 0o644)
	if _, _, _, err := LoadOrCreateKey(bad); err == nil {
		t.Fatal("group-readable key file accepted by LoadOrCreateKey")
	}
	// Without a path, a private directory is made.
	used, _, _, err = LoadOrCreateKey("")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(filepath.Dir(used))
	dst, _ := os.Stat(filepath.Dir(used))
	if dst.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %#o", dst.Mode().Perm())
	}
}

func TestServeRefusesNonLoopbackListener(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip("cannot listen on 0.0.0.0 here")
	}
	defer ln.Close()
	if err := New(Config{}).Serve(ln); err == nil {
		t.Fatal("Serve accepted a 0.0.0.0 listener")
	}
}
