package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/kwyre/kwyre/services/console/client"
)

type healthMsg struct {
	h   client.Health
	err error
}

type auditMsg struct {
	a   client.Audit
	err error
}

// sessionMsg answers a request to open a session.
type sessionMsg struct {
	id  string
	err error
	gen int
}

// after runs call after delay with a 5 s deadline, unless the model is closing.
func (m *Model) after(delay time.Duration, call func(context.Context) tea.Msg) tea.Cmd {
	ctx := m.ctx
	return func() tea.Msg {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return call(cctx)
	}
}

// checkHealth asks /health after delay.
func (m *Model) checkHealth(delay time.Duration) tea.Cmd {
	c := m.opt.Client
	return m.after(delay, func(ctx context.Context) tea.Msg {
		h, err := c.Health(ctx)
		return healthMsg{h, err}
	})
}

// fetchAudit asks /audit after delay.
func (m *Model) fetchAudit(delay time.Duration) tea.Cmd {
	c := m.opt.Client
	return m.after(delay, func(ctx context.Context) tea.Msg {
		a, err := c.Audit(ctx)
		return auditMsg{a, err}
	})
}

func (m *Model) onHealth(msg healthMsg) tea.Cmd {
	if msg.err != nil {
		if m.phase == phaseChat {
			// The service went away (restart): its sessions are gone.
			m.status = client.Describe(msg.err)
			m.session = ""
			m.lost = true
		}
		if m.phase != phaseChat {
			m.phase = phaseConnecting
		}
		return m.checkHealth(loadPoll)
	}
	m.health = msg.h
	if !msg.h.Ready() {
		if m.phase == phaseChat {
			m.status = "the service is loading the model again"
			m.session = ""
			m.lost = true
		}
		m.phase = phaseLoading
		return m.checkHealth(loadPoll)
	}
	if m.phase != phaseChat {
		m.phase = phaseChat
		m.status = ""
		m.layout()
		m.render()
		return tea.Batch(m.openSession(), m.fetchAudit(0), m.checkHealth(statePoll))
	}
	if m.lost {
		m.lost = false
		m.status = "service is back"
		return tea.Batch(m.openSession(), m.checkHealth(statePoll))
	}
	return m.checkHealth(statePoll)
}

func (m *Model) onAudit(msg auditMsg) tea.Cmd {
	if msg.err == nil {
		a := msg.a
		m.audit = &a
		if a.SecurityControls.IntrusionWatchdog.Triggered && (len(m.history) > 0 || m.streaming) {
			// The watchdog saw an intrusion: the service wipes every
			// session, and the screen goes with them.
			return tea.Batch(m.newSession("the watchdog raised an alarm: the conversation was wiped"), m.fetchAudit(statePoll))
		}
	} else if client.IsUnauthorized(msg.err) {
		m.reloadKey()
	}
	return m.fetchAudit(statePoll)
}

// openSession asks for a new session unless one is open or being opened.
func (m *Model) openSession() tea.Cmd {
	if m.session != "" || m.opening {
		return nil
	}
	m.opening = true
	c, ctx, gen := m.opt.Client, m.ctx, m.gen
	return func() tea.Msg {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		id, err := c.NewSession(sctx)
		return sessionMsg{id: id, err: err, gen: gen}
	}
}

func (m *Model) onSession(msg sessionMsg) tea.Cmd {
	m.opening = false
	if msg.err != nil {
		m.status = client.Describe(msg.err)
		if client.IsUnauthorized(msg.err) {
			m.reloadKey()
		}
		return nil // the next message tries again
	}
	if msg.gen != m.gen || m.session != "" {
		// Opened for a conversation that was wiped meanwhile: end it too.
		return m.endSession(msg.id)
	}
	m.session = msg.id
	m.sessionStart = m.opt.Now()
	if m.status == statusOpening {
		m.status = "session open: press Enter to send"
	}
	return nil
}

// endSession ends (wipes) a session on the service in the background.
func (m *Model) endSession(id string) tea.Cmd {
	if id == "" {
		return nil
	}
	c := m.opt.Client
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.EndSession(ctx, id); err != nil && !client.IsUnavailable(err) {
			return doneMsg{err: err, gen: -1}
		}
		return nil
	}
}

func (m *Model) reloadKey() {
	if m.opt.KeyFile == "" {
		return
	}
	if key, err := client.ReadKeyFile(m.opt.KeyFile); err == nil {
		m.opt.Client.SetKey(key)
		clear(key)
	}
}
