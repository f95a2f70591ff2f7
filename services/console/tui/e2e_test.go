package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/kwyre/kwyre/services/console/client"
	"github.com/kwyre/kwyre/services/console/internal/servicetest"
	"github.com/kwyre/kwyre/tools/testmodel"
)

// The TUI against the real inference service and the demo model: progress,
// a streamed turn, Ctrl-N and Ctrl-W ending sessions on the service.

func TestMain(m *testing.M) { servicetest.Main(m) }

func TestTUIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the inference service")
	}
	const step = 60 * time.Second
	svc := servicetest.Start(t, servicetest.Options{})
	key, err := client.ReadKeyFile(svc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	m, out := newTestModel(t, svc.URL, nil)
	m.opt.Client.SetKey(key)
	d := newDriver(t, m)

	d.until("a session", func() bool { return m.session != "" }, step)
	d.until("the audit", func() bool { return m.audit != nil }, step)
	first := m.session

	d.typeText("Hello, who are you?")
	d.key(tea.KeyEnter)
	d.until("the reply", func() bool { return !m.streaming }, step)
	if m.status != "" {
		t.Fatalf("status after the turn: %q", m.status)
	}
	if got := m.history[len(m.history)-1].text; got != testmodel.DemoReply {
		t.Fatalf("reply %q, want %q", got, testmodel.DemoReply)
	}
	if v := m.View(); !strings.Contains(v, "kwyre> "+testmodel.DemoReply) || !strings.Contains(v, "you> Hello, who are you?") {
		t.Fatalf("screen:\n%s", v)
	}

	active := func() int {
		a, err := m.opt.Client.Audit(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return a.ActiveSessions
	}
	d.key(tea.KeyCtrlN)
	d.until("a new session", func() bool { return m.session != "" && m.session != first }, step)
	d.until("the old session ended", func() bool { return active() == 1 }, step)
	if strings.Contains(m.View(), testmodel.DemoReply) {
		t.Fatal("Ctrl-N left the old conversation on screen")
	}

	// A second turn in the new session, then wipe it.
	d.typeText("Again")
	d.key(tea.KeyEnter)
	d.until("the reply", func() bool { return !m.streaming }, step)
	if got := m.history[len(m.history)-1].text; got != testmodel.DemoReply {
		t.Fatalf("reply in the new session %q", got)
	}
	second := m.session
	d.key(tea.KeyCtrlW)
	d.until("a fresh session", func() bool { return m.session != "" && m.session != second }, step)
	d.until("the wiped session ended", func() bool { return active() == 1 }, step)
	if len(m.history) != 0 || strings.Contains(m.View(), testmodel.DemoReply) {
		t.Fatalf("Ctrl-W left the conversation:\n%s", m.View())
	}
	if !strings.Contains(out.String(), clearScrollback) {
		t.Fatal("Ctrl-W did not clear the terminal's scrollback")
	}

	// A session the service ended (here: ended behind the console's back)
	// clears the screen too, and a new one opens.
	d.typeText("One more")
	d.key(tea.KeyEnter)
	d.until("the reply", func() bool { return !m.streaming }, step)
	if err := m.opt.Client.EndSession(context.Background(), m.session); err != nil {
		t.Fatal(err)
	}
	gone := m.session
	d.typeText("Still there?")
	d.key(tea.KeyEnter)
	d.until("the refused turn", func() bool { return !m.streaming }, step)
	d.until("a replacement session", func() bool { return m.session != "" && m.session != gone }, step)
	if len(m.history) != 0 || !strings.Contains(m.status, "ended the session") {
		t.Fatalf("after the service ended the session: status %q, screen:\n%s", m.status, m.View())
	}
}
