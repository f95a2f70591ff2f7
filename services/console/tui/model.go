// Package tui is the kiosk chat on the VGA console (tty1): a full-screen
// bubbletea program showing boot and model-load progress, then the
// conversation with streamed replies, an input line and a status bar.
package tui

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/kwyre/kwyre/services/console/client"
)

// Poll intervals.
const (
	loadPoll  = 500 * time.Millisecond // /health while the service starts
	statePoll = 5 * time.Second        // /health and /audit once chatting (the watchdog scans every 5 s)
)

type phase int

const (
	phaseConnecting phase = iota // service not reachable yet
	phaseLoading                 // service up, model loading
	phaseChat
)

type role int

const (
	roleYou role = iota
	roleKwyre
	roleStatus
)

// turn is one entry of the conversation as shown. It lives only in this
// model and is dropped on every wipe.
type turn struct {
	role role
	text string
}

// Options configure New.
type Options struct {
	Client  *client.Client
	KeyFile string           // re-read when the service rejects the key; "" = never
	Out     io.Writer        // the terminal, for clearing its scrollback on a wipe
	Now     func() time.Time // nil = time.Now
	Context context.Context  // ends in-flight requests when the program stops
	// IdleWipe wipes the conversation after this long without a key or a
	// reply, as the service wipes idle sessions; 0 = never.
	IdleWipe time.Duration
}

// Model is the bubbletea model of the kiosk chat.
type Model struct {
	opt    Options
	ctx    context.Context
	styles styles

	width, height int
	phase         phase
	health        client.Health
	audit         *client.Audit
	status        string // the last status line (errors, notices)
	lost          bool   // the service went away while chatting

	session      string
	sessionStart time.Time
	opening      bool // a session request is in flight

	history   []turn
	streaming bool
	queued    string // a message typed during a reply, sent after it
	lastUse   time.Time
	stream    chan tea.Msg
	cancel    context.CancelFunc // stops the reply being streamed
	gen       int                // bumps on every wipe, so late messages of an old stream are dropped

	vp viewport.Model
	ta textarea.Model
}

// New builds the model; the program's Init starts polling the service.
func New(o Options) *Model {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	ctx := o.Context
	if ctx == nil {
		ctx = context.Background()
	}
	ta := textarea.New()
	ta.Placeholder = "Type a message, Enter sends"
	ta.ShowLineNumbers = false
	ta.Prompt = "> "
	ta.CharLimit = 16 << 10
	ta.SetHeight(2)
	// Enter sends; the keys the kiosk uses must not also edit the text.
	ta.KeyMap.InsertNewline = key.NewBinding(key.WithDisabled())
	ta.KeyMap.LineNext = key.NewBinding(key.WithKeys("down"))
	ta.KeyMap.DeleteWordBackward = key.NewBinding(key.WithKeys("alt+backspace"))
	ta.Focus()
	m := &Model{
		opt:    o,
		ctx:    ctx,
		styles: newStyles(lipgloss.NewRenderer(o.Out)),
		vp:     viewport.New(80, 20),
		ta:     ta,
		width:  80,
		height: 25,
	}
	m.layout()
	return m
}

// Init starts the health poll and the clock of the status bar.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.checkHealth(0), tick(), textarea.Blink)
}

// Session is the id of the open session ("" = none), for the caller to end
// it when the program stops.
func (m *Model) Session() string { return m.session }

// Wipe drops the conversation (on exit).
func (m *Model) Wipe() { m.dropHistory() }

type tickMsg time.Time

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		m.render()
		return m, nil
	case tickMsg:
		if m.idle() {
			return m, tea.Batch(tick(), m.newSession(fmt.Sprintf("idle for %s: the conversation was wiped", m.opt.IdleWipe)))
		}
		return m, tick() // redraws the session age
	case healthMsg:
		return m, m.onHealth(msg)
	case auditMsg:
		return m, m.onAudit(msg)
	case sessionMsg:
		return m, m.onSession(msg)
	case chunkMsg:
		return m, m.onChunk(msg)
	case doneMsg:
		return m, m.onDone(msg)
	case screenClearedMsg:
		return m, tea.ClearScreen
	case tea.KeyMsg:
		m.lastUse = m.opt.Now()
		return m, m.onKey(msg)
	}
	var cmd tea.Cmd
	m.ta, cmd = m.ta.Update(msg)
	return m, cmd
}

// idle reports a conversation on screen untouched for the idle period.
func (m *Model) idle() bool {
	return m.opt.IdleWipe > 0 && len(m.history) > 0 && !m.streaming &&
		m.opt.Now().Sub(m.lastUse) >= m.opt.IdleWipe
}

// layout sizes the conversation view and the input to the screen.
func (m *Model) layout() {
	w := max(m.width, 20)
	m.ta.SetWidth(w)
	// status bar + status line + separator + input
	h := m.height - 3 - m.ta.Height()
	m.vp.Width = w
	m.vp.Height = max(h, 1)
}

// render rebuilds the conversation text in the view, following the end of
// the conversation unless the user scrolled up.
func (m *Model) render() {
	follow := m.vp.AtBottom() || m.streaming
	w := max(m.vp.Width, 20)
	var b strings.Builder
	for i, t := range m.history {
		if i > 0 {
			b.WriteString("\n")
		}
		switch t.role {
		case roleYou:
			b.WriteString(m.styles.wrap(w, m.styles.you.Render("you> ")+t.text))
		case roleKwyre:
			b.WriteString(m.styles.wrap(w, m.styles.kwyre.Render("kwyre> ")+t.text))
		case roleStatus:
			b.WriteString(m.styles.notice.Render(m.styles.wrap(w, t.text)))
		}
	}
	m.vp.SetContent(b.String())
	if follow {
		m.vp.GotoBottom()
	}
}

// dropHistory forgets the conversation shown.
func (m *Model) dropHistory() {
	for i := range m.history {
		m.history[i] = turn{}
	}
	m.history = nil
	m.queued = ""
	m.vp.SetContent("")
	m.vp.GotoTop()
	m.ta.Reset()
}
