package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

type styles struct {
	r                         *lipgloss.Renderer
	you, kwyre, notice, title lipgloss.Style
	bar, barGood, barBad      lipgloss.Style
	status, hint              lipgloss.Style
}

// The Linux console has 8 colours (16 with bold): stick to the basic ones.
// Its font has the CP437 glyphs (box drawing, blocks, middle dot) but no
// ellipsis, so the screen uses "..." and "~".
func newStyles(r *lipgloss.Renderer) styles {
	return styles{
		r:       r,
		you:     r.NewStyle().Foreground(lipgloss.Color("6")).Bold(true),
		kwyre:   r.NewStyle().Foreground(lipgloss.Color("2")).Bold(true),
		notice:  r.NewStyle().Foreground(lipgloss.Color("3")),
		title:   r.NewStyle().Bold(true),
		bar:     r.NewStyle().Foreground(lipgloss.Color("0")).Background(lipgloss.Color("7")),
		barGood: r.NewStyle().Foreground(lipgloss.Color("0")).Background(lipgloss.Color("2")),
		barBad:  r.NewStyle().Foreground(lipgloss.Color("7")).Background(lipgloss.Color("1")).Bold(true),
		status:  r.NewStyle().Foreground(lipgloss.Color("3")),
		hint:    r.NewStyle().Faint(true),
	}
}

func (s styles) wrap(width int, text string) string {
	return s.r.NewStyle().Width(width).Render(text)
}

// View draws the screen.
func (m *Model) View() string {
	if m.phase != phaseChat {
		return m.loadingView()
	}
	var b strings.Builder
	b.WriteString(m.vp.View())
	b.WriteString("\n")
	b.WriteString(m.statusLine())
	b.WriteString("\n")
	b.WriteString(m.styles.hint.Render(strings.Repeat("─", max(m.width, 1))))
	b.WriteString("\n")
	b.WriteString(m.ta.View())
	b.WriteString("\n")
	b.WriteString(m.statusBar())
	return b.String()
}

func (m *Model) statusLine() string {
	s := m.status
	if s == "" && m.streaming {
		s = "kwyre is answering... (Ctrl-C stops)"
	}
	if s == "" {
		return m.styles.hint.Render(truncate(helpText, m.width))
	}
	return m.styles.status.Render(truncate(s, m.width))
}

// statusBar: model, where it runs, integrity, network drivers, watchdog,
// session age.
func (m *Model) statusBar() string {
	st := m.styles
	parts := []string{}
	name := m.health.Model
	if name == "" {
		name = "model"
	}
	parts = append(parts, st.bar.Render(" "+name+" "), st.bar.Render(" "+m.health.Backend()+" "))
	if m.audit == nil {
		parts = append(parts, st.bar.Render(" integrity ? "), st.bar.Render(" watchdog ? "))
	} else {
		ok, label := m.audit.IntegrityVerified()
		if ok {
			parts = append(parts, st.barGood.Render(" "+label+" "))
		} else {
			parts = append(parts, st.barBad.Render(" "+label+" "))
		}
		if ok, label := m.audit.Network(); ok {
			parts = append(parts, st.barGood.Render(" "+label+" "))
		} else {
			parts = append(parts, st.barBad.Render(" "+label+" "))
		}
		wd := m.audit.Watchdog()
		w := m.audit.SecurityControls.IntrusionWatchdog
		switch {
		case w.Triggered:
			parts = append(parts, st.barBad.Render(" "+wd+" "))
		case w.Running:
			parts = append(parts, st.barGood.Render(" "+wd+" "))
		default:
			parts = append(parts, st.bar.Render(" "+wd+" "))
		}
	}
	if m.session != "" {
		parts = append(parts, st.bar.Render(" session "+age(m.opt.Now().Sub(m.sessionStart))+" "))
	} else {
		parts = append(parts, st.bar.Render(" no session "))
	}
	line := strings.Join(parts, st.bar.Render("│"))
	line = ansi.Truncate(line, max(m.width, 1), "~")
	if w := lipgloss.Width(line); w < m.width {
		line += st.bar.Render(strings.Repeat(" ", m.width-w))
	}
	return line
}

func (m *Model) loadingView() string {
	st := m.styles
	var b strings.Builder
	b.WriteString(st.title.Render("KWYRE"))
	b.WriteString(" · private LLM appliance\n\n")
	switch m.phase {
	case phaseConnecting:
		b.WriteString("Starting the inference service...\n")
		if m.status != "" {
			b.WriteString(st.status.Render(m.status) + "\n")
		}
	case phaseLoading:
		name := m.health.Model
		if name == "" {
			name = "the model"
		}
		fmt.Fprintf(&b, "Loading %s on %s\n\n", name, m.health.Backend())
		b.WriteString(progressBar(m.health.Percent(), 40) + fmt.Sprintf(" %3d%%\n", m.health.Percent()))
	}
	b.WriteString("\n" + st.hint.Render("Nothing leaves this machine. Conversations live in RAM only and are wiped when a session ends."))
	box := lipgloss.NewStyle().Padding(1, 2).Render(b.String())
	return lipgloss.Place(max(m.width, 1), max(m.height, 1), lipgloss.Center, lipgloss.Center, box)
}

func progressBar(pct, width int) string {
	full := pct * width / 100
	return "[" + strings.Repeat("█", full) + strings.Repeat("░", width-full) + "]"
}

// age formats a session's age: 42s, 3m05s, 1h02m.
func age(d time.Duration) string {
	d = max(d, 0).Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func truncate(s string, w int) string {
	if w <= 1 || lipgloss.Width(s) <= w {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && lipgloss.Width(string(r)) > w-1 {
		r = r[:len(r)-1]
	}
	return string(r) + "~"
}
