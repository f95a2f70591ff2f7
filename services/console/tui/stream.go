package tui

import (
	"context"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/kwyre/kwyre/services/console/client"
	"github.com/kwyre/kwyre/services/console/termtext"
)

// chunkMsg is a piece of the reply, already filtered for the terminal.
type chunkMsg struct {
	text string
	gen  int
}

// doneMsg ends a reply (or reports a background failure, gen -1).
type doneMsg struct {
	res client.ChatResult
	err error
	gen int
}

// send starts streaming the reply to text. The goroutine feeds m.stream;
// waitStream hands its messages to Update one at a time.
func (m *Model) send(text string) tea.Cmd {
	m.history = append(m.history, turn{role: roleYou, text: text}, turn{role: roleKwyre})
	m.streaming = true
	m.status = ""
	m.render()
	m.vp.GotoBottom()

	ctx, cancel := context.WithCancel(m.ctx)
	m.cancel = cancel
	ch := make(chan tea.Msg, 64)
	m.stream = ch
	c, session, gen := m.opt.Client, m.session, m.gen
	msg := []byte(text)
	go func() {
		defer close(ch)
		defer clear(msg)
		var f termtext.Filter
		buf := make([]byte, 0, 256)
		defer func() { clear(buf[:cap(buf)]) }()
		put := func(v tea.Msg) bool {
			select {
			case ch <- v:
				return true
			case <-ctx.Done():
				return false
			}
		}
		res, err := c.Chat(ctx, session, msg, func(piece []byte) error {
			buf = f.Append(buf[:0], piece)
			if len(buf) == 0 {
				return nil
			}
			s := string(buf)
			clear(buf)
			if !put(chunkMsg{text: s, gen: gen}) {
				return ctx.Err()
			}
			return nil
		})
		if tail := f.Flush(buf[:0]); len(tail) > 0 {
			put(chunkMsg{text: string(tail), gen: gen})
		}
		ch <- doneMsg{res: res, err: err, gen: gen} // buffered or drained: see stop
	}()
	return waitStream(ch)
}

func waitStream(ch <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		v, ok := <-ch
		if !ok {
			return nil
		}
		return v
	}
}

func (m *Model) onChunk(msg chunkMsg) tea.Cmd {
	if msg.gen != m.gen || !m.streaming {
		return nil
	}
	m.lastUse = m.opt.Now()
	last := &m.history[len(m.history)-1]
	last.text += msg.text
	m.render()
	return waitStream(m.stream)
}

func (m *Model) onDone(msg doneMsg) tea.Cmd {
	if msg.gen == -1 {
		m.status = client.Describe(msg.err)
		return nil
	}
	if msg.gen != m.gen {
		return nil
	}
	m.streaming = false
	m.cancel = nil
	m.stream = nil
	m.lastUse = m.opt.Now()
	err := msg.err
	switch {
	case err == nil:
		if msg.res.FinishReason == "length" {
			m.status = "reply cut at the length limit; Ctrl-N starts a fresh session"
		}
	case err == context.Canceled:
		m.status = "reply stopped"
	case client.IsSessionGone(err):
		// The service wiped this session (idle timeout, watchdog, restart):
		// the screen must not keep what the service no longer has.
		m.session = ""
		cmd := m.wipe("the service ended the session (wiped); a new one is open")
		return tea.Batch(cmd, m.openSession())
	case client.IsUnavailable(err):
		m.session = ""
		m.status = client.Describe(err)
	case client.IsContextFull(err):
		m.status = "context full: Ctrl-N starts a new session"
	case client.IsUnauthorized(err):
		m.status = client.Describe(err)
		m.reloadKey()
	default:
		m.status = client.Describe(err)
	}
	// Drop an empty reply line left by a failed turn.
	if n := len(m.history); n > 0 && m.history[n-1].role == roleKwyre && strings.TrimSpace(m.history[n-1].text) == "" {
		m.history = m.history[:n-1]
	}
	m.render()
	if q := m.queued; q != "" && err == nil {
		m.queued = ""
		return m.send(q)
	}
	if m.queued != "" {
		// The turn failed: give the waiting message back to the input.
		m.ta.SetValue(m.queued)
		m.queued = ""
	}
	return nil
}

// stop cancels the reply being streamed, if any.
func (m *Model) stop() {
	if m.cancel != nil {
		m.cancel()
	}
	if m.stream != nil {
		// Drain so the streaming goroutine can always finish.
		go func(ch <-chan tea.Msg) {
			for range ch {
			}
		}(m.stream)
	}
	m.streaming = false
	m.cancel = nil
	m.stream = nil
}
