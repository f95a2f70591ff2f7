package tui

import (
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// driver plays the part of tea.Program for tests: it runs the commands
// Update returns and feeds their messages back into Update, one at a time.
type driver struct {
	t    *testing.T
	m    *Model
	msgs chan tea.Msg
	done chan struct{}
}

func newDriver(t *testing.T, m *Model) *driver {
	d := &driver{t: t, m: m, msgs: make(chan tea.Msg, 256), done: make(chan struct{})}
	t.Cleanup(func() { close(d.done) })
	d.run(m.Init())
	d.update(tea.WindowSizeMsg{Width: 200, Height: 40})
	return d
}

func (d *driver) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		msg := cmd()
		select {
		case d.msgs <- msg:
		case <-d.done:
		}
	}()
}

func (d *driver) update(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			d.run(c)
		}
	default:
		_, cmd := d.m.Update(msg)
		d.run(cmd)
	}
}

// until processes messages until cond holds.
func (d *driver) until(what string, cond func() bool, within time.Duration) {
	d.t.Helper()
	deadline := time.After(within)
	for !cond() {
		select {
		case msg := <-d.msgs:
			d.update(msg)
		case <-deadline:
			d.t.Fatalf("waited %s for %s; screen:\n%s", within, what, d.m.View())
		}
	}
}

func (d *driver) typeText(s string) {
	d.update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)})
}

func (d *driver) key(k tea.KeyType) { d.update(tea.KeyMsg{Type: k}) }
