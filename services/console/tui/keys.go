package tui

import (
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/kwyre/kwyre/services/inference/scrub"
)

// clearScrollback erases the terminal's scrollback (ESC[3J) and screen; the
// renderer then repaints. Bubbletea's own clear leaves the scrollback.
// ESC[3J comes last: some terminals push a cleared screen into the scrollback.
const clearScrollback = "\x1b[H\x1b[2J\x1b[3J"

// ClearScrollback is what a wipe writes to the terminal.
const ClearScrollback = clearScrollback

type screenClearedMsg struct{}

const statusOpening = "opening a session..."

const helpText = "Enter sends · Ctrl-N new session · Ctrl-W wipe now · Ctrl-C stop reply · PgUp/PgDn scroll · /help"

func (m *Model) onKey(k tea.KeyMsg) tea.Cmd {
	switch k.Type {
	case tea.KeyCtrlN:
		if m.phase != phaseChat {
			return nil
		}
		return m.newSession("new session: the previous one was wiped")
	case tea.KeyCtrlW:
		if m.phase != phaseChat {
			return nil
		}
		return m.wipeNow()
	case tea.KeyCtrlC:
		// A kiosk never quits on a key: Ctrl-C stops a reply or clears the input.
		if m.streaming && m.cancel != nil {
			m.cancel()
		} else {
			m.ta.Reset()
		}
		return nil
	case tea.KeyPgUp:
		m.vp.PageUp()
		return nil
	case tea.KeyPgDown:
		m.vp.PageDown()
		return nil
	case tea.KeyEnter:
		return m.enter()
	}
	if m.phase != phaseChat {
		return nil
	}
	var cmd tea.Cmd
	m.ta, cmd = m.ta.Update(k)
	return cmd
}

// enter sends the typed line, or runs a /command.
func (m *Model) enter() tea.Cmd {
	if m.phase != phaseChat {
		return nil
	}
	text := strings.TrimSpace(m.ta.Value())
	switch text {
	case "":
		return nil
	case "/new":
		return m.newSession("new session: the previous one was wiped")
	case "/wipe":
		return m.wipeNow()
	case "/help":
		m.ta.Reset()
		m.status = helpText
		return nil
	}
	if m.streaming {
		if m.queued != "" {
			m.status = "one message is already waiting for this reply to finish"
			return nil
		}
		m.queued = text
		m.ta.Reset()
		m.status = "sends when this reply is finished (Ctrl-C stops the reply)"
		return nil
	}
	if m.session == "" {
		// No session yet (or the last one failed to open): open one first.
		if m.opening {
			m.status = "opening a session, try again in a moment"
			return nil
		}
		m.status = statusOpening
		return m.openSession()
	}
	m.ta.Reset()
	return m.send(text)
}

// wipeNow ends the session, forgets the conversation and clears the screen.
func (m *Model) wipeNow() tea.Cmd {
	old := m.session
	m.session = ""
	cmd := m.wipe("wiped: the conversation is gone from the service and the screen")
	return tea.Batch(cmd, m.endSession(old), m.openSession())
}

// newSession is a wipe that says so: the old session ends (wiped on the
// service) and a new one opens.
func (m *Model) newSession(note string) tea.Cmd {
	old := m.session
	m.session = ""
	cmd := m.wipe(note)
	return tea.Batch(cmd, m.endSession(old), m.openSession())
}

// wipe drops everything shown and clears the terminal, scrollback included.
func (m *Model) wipe(note string) tea.Cmd {
	m.stop()
	m.gen++
	m.dropHistory()
	scrub.CollectSoon() // the dropped lines, now garbage, are overwritten
	m.status = note
	out := m.opt.Out
	return func() tea.Msg {
		_, _ = out.Write([]byte(clearScrollback))
		return screenClearedMsg{}
	}
}
