package tui

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/kwyre/kwyre/services/console/client"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// closedURL is a loopback address where nothing listens.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

func newTestModel(t *testing.T, url string, now func() time.Time) (*Model, *syncBuffer) {
	c, err := client.New(url, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	m := New(Options{Client: c, Out: out, Now: now, Context: context.Background()})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	return m, out
}

func health(status string, progress float64, gpu string) healthMsg {
	return healthMsg{h: client.Health{Status: status, Progress: progress, Model: "demo.gguf", GPU: json.RawMessage(gpu)}}
}

func TestLoadingScreens(t *testing.T) {
	m, _ := newTestModel(t, closedURL(t), nil)
	if v := m.View(); !strings.Contains(v, "Starting the inference service") {
		t.Fatalf("first screen:\n%s", v)
	}
	m.Update(healthMsg{err: &client.UnavailableError{Op: "GET /health", Err: net.ErrClosed}})
	if m.phase != phaseConnecting {
		t.Fatalf("phase %v after an unreachable service", m.phase)
	}
	m.Update(health("loading", 0.45, `""`))
	v := m.View()
	if !strings.Contains(v, "Loading demo.gguf on CPU") || !strings.Contains(v, " 45%") {
		t.Fatalf("loading screen:\n%s", v)
	}
	m.Update(health("loading", 1, `"NVIDIA H100"`))
	if v := m.View(); !strings.Contains(v, "100%") || !strings.Contains(v, "GPU NVIDIA H100") {
		t.Fatalf("loading screen at 100%%:\n%s", v)
	}
	// Keys typed while loading do nothing.
	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("early")})
	_, cmd := m.Update(health("ready", 1, `"NVIDIA H100"`))
	if m.phase != phaseChat || cmd == nil {
		t.Fatalf("phase %v, cmd %v after ready", m.phase, cmd)
	}
	if m.ta.Value() != "" {
		t.Fatalf("input holds %q typed before ready", m.ta.Value())
	}
	if !m.opening {
		t.Fatal("ready did not open a session")
	}
}

func TestStatusBar(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	m, _ := newTestModel(t, closedURL(t), clock)
	m.Update(health("ready", 1, `""`))
	if v := m.View(); !strings.Contains(v, "integrity ?") || !strings.Contains(v, "no session") {
		t.Fatalf("status bar before audit/session:\n%s", v)
	}
	m.Update(sessionMsg{id: "s1", gen: m.gen})
	var a client.Audit
	json.Unmarshal([]byte(`{"security_controls":{"weight_integrity":"verified","network_drivers":"none (CONFIG_NETDEVICES not set; no net devices besides lo)","intrusion_watchdog":{"running":true}}}`), &a)
	m.Update(auditMsg{a: a})
	now = now.Add(3*time.Minute + 5*time.Second)
	v := m.View()
	for _, want := range []string{"demo.gguf", "CPU", "integrity verified", "no network", "watchdog on", "session 3m05s"} {
		if !strings.Contains(v, want) {
			t.Errorf("status bar lacks %q:\n%s", want, v)
		}
	}
	a = client.Audit{}
	json.Unmarshal([]byte(`{"security_controls":{"weight_integrity":"structure check only","intrusion_watchdog":{"running":true,"triggered":true}}}`), &a)
	m.Update(auditMsg{a: a})
	v = m.View()
	for _, want := range []string{"integrity: structure check only", "network ?", "WATCHDOG TRIGGERED"} {
		if !strings.Contains(v, want) {
			t.Errorf("status bar lacks %q:\n%s", want, v)
		}
	}
}

func TestAge(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {-time.Second, "0s"}, {42 * time.Second, "42s"}, {65 * time.Second, "1m05s"},
		{time.Hour + 2*time.Minute + 9*time.Second, "1h02m"},
	}
	for _, tt := range tests {
		if got := age(tt.d); got != tt.want {
			t.Errorf("age(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// A chat turn against a service that is down: a status line, no crash, the
// typed message kept on screen, the empty reply line dropped.
func TestSendWhileServiceDown(t *testing.T) {
	m, _ := newTestModel(t, closedURL(t), nil)
	d := newDriver(t, m)
	d.update(health("ready", 1, `""`))
	d.update(sessionMsg{id: "s1", gen: m.gen})
	d.typeText("hello there")
	d.key(tea.KeyEnter)
	if !m.streaming {
		t.Fatal("Enter did not send")
	}
	d.until("the failed turn", func() bool { return !m.streaming }, 10*time.Second)
	v := m.View()
	if !strings.Contains(v, "you> hello there") || !strings.Contains(v, "inference service unreachable") {
		t.Fatalf("screen after a failed turn:\n%s", v)
	}
	if len(m.history) != 1 {
		t.Fatalf("history %d turns, want only the user's", len(m.history))
	}
	if m.session != "" {
		t.Fatal("an unreachable service keeps the session id; a restarted service has none")
	}
}

func TestWipeClearsScreenAndHistory(t *testing.T) {
	m, out := newTestModel(t, closedURL(t), nil)
	d := newDriver(t, m)
	d.update(health("ready", 1, `""`))
	d.update(sessionMsg{id: "s1", gen: m.gen})
	m.history = []turn{{roleYou, "a secret question"}, {roleKwyre, "a secret answer"}}
	m.render()
	if !strings.Contains(m.View(), "a secret answer") {
		t.Fatal("setup: conversation not shown")
	}
	for _, k := range []tea.KeyType{tea.KeyCtrlW, tea.KeyCtrlN} {
		m.history = []turn{{roleYou, "a secret question"}, {roleKwyre, "a secret answer"}}
		m.render()
		m.session = "s1"
		d.typeText("half typed")
		before := strings.Count(out.String(), clearScrollback)
		d.key(k)
		d.until("the scrollback clear", func() bool { return strings.Count(out.String(), clearScrollback) > before }, 5*time.Second)
		v := m.View()
		if strings.Contains(v, "secret") || strings.Contains(v, "half typed") || len(m.history) != 0 {
			t.Fatalf("%v left the conversation:\n%s", k, v)
		}
		if m.session == "s1" {
			t.Fatalf("%v kept the old session", k)
		}
	}
}

func TestKeysAndCommands(t *testing.T) {
	m, _ := newTestModel(t, closedURL(t), nil)
	d := newDriver(t, m)
	d.update(health("ready", 1, `""`))
	d.update(sessionMsg{id: "s1", gen: m.gen})

	// Scrolling.
	for i := 0; i < 40; i++ {
		m.history = append(m.history, turn{roleKwyre, "line"})
	}
	m.render()
	if !m.vp.AtBottom() {
		t.Fatal("the view does not follow the conversation")
	}
	y := m.vp.YOffset
	d.key(tea.KeyPgUp)
	if m.vp.YOffset >= y {
		t.Fatalf("PgUp: offset %d -> %d", y, m.vp.YOffset)
	}
	d.key(tea.KeyPgDown)
	if m.vp.YOffset != y {
		t.Fatalf("PgDn: offset %d, want %d", m.vp.YOffset, y)
	}

	// Ctrl-C clears the input and never quits.
	d.typeText("draft")
	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyCtrlC})
	if m.ta.Value() != "" {
		t.Fatalf("Ctrl-C left %q", m.ta.Value())
	}
	if cmd != nil {
		if _, quit := cmd().(tea.QuitMsg); quit {
			t.Fatal("Ctrl-C quits the kiosk")
		}
	}

	// /help shows the keys; an empty line sends nothing.
	d.typeText("/help")
	d.key(tea.KeyEnter)
	if !strings.Contains(m.View(), "Ctrl-W wipe now") {
		t.Fatalf("/help:\n%s", m.View())
	}
	n := len(m.history)
	d.typeText("   ")
	d.key(tea.KeyEnter)
	if len(m.history) != n || m.streaming {
		t.Fatal("a blank line was sent")
	}
}

// Pieces of a stream that a wipe abandoned never reach the screen.
func TestStaleChunksDropped(t *testing.T) {
	m, _ := newTestModel(t, closedURL(t), nil)
	m.Update(health("ready", 1, `""`))
	m.history = []turn{{roleYou, "q"}, {roleKwyre, ""}}
	m.streaming = true
	ch := make(chan tea.Msg, 1)
	m.stream = ch
	m.Update(chunkMsg{text: "safe", gen: m.gen})
	m.Update(chunkMsg{text: " text", gen: m.gen + 1}) // from a wiped stream: dropped
	if got := m.history[1].text; got != "safe" {
		t.Fatalf("reply %q", got)
	}
}

// A message typed while a reply streams waits for it, then goes out; a
// failed reply hands it back to the input instead.
func TestQueuedDuringReply(t *testing.T) {
	m, _ := newTestModel(t, closedURL(t), nil)
	d := newDriver(t, m)
	d.update(health("ready", 1, `""`))
	d.update(sessionMsg{id: "s1", gen: m.gen})
	m.history = []turn{{roleYou, "first"}, {roleKwyre, "partial"}}
	m.streaming = true
	d.typeText("second")
	d.key(tea.KeyEnter)
	if m.queued != "second" || m.ta.Value() != "" {
		t.Fatalf("queued %q, input %q", m.queued, m.ta.Value())
	}
	d.typeText("third")
	d.key(tea.KeyEnter)
	if m.queued != "second" || m.ta.Value() != "third" {
		t.Fatalf("a second queued message: queued %q, input %q", m.queued, m.ta.Value())
	}
	m.ta.Reset()
	d.update(doneMsg{res: client.ChatResult{FinishReason: "stop"}, gen: m.gen})
	if !m.streaming || m.queued != "" || m.history[2].text != "second" {
		t.Fatalf("queued message not sent: streaming %v, history %+v", m.streaming, m.history)
	}
	// That turn fails (nothing listens); queue another meanwhile: it
	// comes back to the input.
	d.typeText("fourth")
	d.key(tea.KeyEnter)
	d.until("the failed turn", func() bool { return !m.streaming }, 10*time.Second)
	if m.ta.Value() != "fourth" || m.queued != "" {
		t.Fatalf("after a failed turn: input %q, queued %q", m.ta.Value(), m.queued)
	}
}

func TestIdleAndAlarmWipes(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	c, err := client.New(closedURL(t), []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	m := New(Options{Client: c, Out: out, Now: clock, IdleWipe: time.Hour})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	m.Update(health("ready", 1, `""`))
	m.Update(sessionMsg{id: "s1", gen: m.gen})

	m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("x")})
	m.history = []turn{{roleYou, "private"}, {roleKwyre, "answer"}}
	now = now.Add(59 * time.Minute)
	m.Update(tickMsg(now))
	if len(m.history) != 2 {
		t.Fatal("wiped before the idle period")
	}
	now = now.Add(time.Minute)
	m.Update(tickMsg(now))
	if len(m.history) != 0 || !strings.Contains(m.status, "idle for 1h0m0s") || m.session != "" {
		t.Fatalf("after an idle hour: %d turns, status %q, session %q", len(m.history), m.status, m.session)
	}

	m.history = []turn{{roleYou, "private"}}
	var a client.Audit
	json.Unmarshal([]byte(`{"security_controls":{"intrusion_watchdog":{"running":true,"triggered":true}}}`), &a)
	m.Update(auditMsg{a: a})
	if len(m.history) != 0 || !strings.Contains(m.status, "watchdog raised an alarm") {
		t.Fatalf("after an alarm: %d turns, status %q", len(m.history), m.status)
	}
}
