package linemode

import "unicode/utf8"

// maxLine bounds one typed line; further keys ring the bell.
const maxLine = 16 << 10

// editor turns raw terminal bytes into lines: CR, LF or CRLF end a line,
// backspace and DEL erase a character, Ctrl-U the line, Ctrl-C abandons it;
// escape sequences (arrow keys, function keys) are ignored.
type editor struct {
	buf    []byte
	lastCR bool // the previous byte was CR, so a following LF is part of it
	esc    int  // escape state: 0 none, 1 after ESC, 2 in CSI/SS3 parameters
}

// result of feeding one byte.
type feedResult int

const (
	feedMore  feedResult = iota // keep going
	feedLine                    // a line is complete: e.line()
	feedAbort                   // Ctrl-C: the line was dropped
)

func newEditor() *editor { return &editor{buf: make([]byte, 0, 256)} }

// feed consumes b and appends what the terminal should show to echo.
func (e *editor) feed(b byte, echo []byte) (feedResult, []byte) {
	lastCR := e.lastCR
	e.lastCR = false
	switch e.esc {
	case 1:
		if b == '[' || b == 'O' {
			e.esc = 2
		} else {
			e.esc = 0 // ESC + key (Alt-key): drop both
		}
		return feedMore, echo
	case 2:
		if b >= 0x40 && b <= 0x7e {
			e.esc = 0
		}
		return feedMore, echo
	}
	switch b {
	case '\r':
		e.lastCR = true
		return feedLine, append(echo, '\n')
	case '\n':
		if lastCR {
			return feedMore, echo
		}
		return feedLine, append(echo, '\n')
	case 0x7f, 0x08: // DEL, BS
		if len(e.buf) == 0 {
			return feedMore, echo
		}
		_, n := utf8.DecodeLastRune(e.buf)
		clear(e.buf[len(e.buf)-n:])
		e.buf = e.buf[:len(e.buf)-n]
		return feedMore, append(echo, '\b', ' ', '\b')
	case 0x15: // Ctrl-U
		for n := utf8.RuneCount(e.buf); n > 0; n-- {
			echo = append(echo, '\b', ' ', '\b')
		}
		e.reset()
		return feedMore, echo
	case 0x03: // Ctrl-C
		e.reset()
		return feedAbort, append(echo, "^C\n"...)
	case 0x1b:
		e.esc = 1
		return feedMore, echo
	case '\t':
		b = ' '
	}
	if b < 0x20 {
		return feedMore, echo // other control keys do nothing
	}
	if len(e.buf) >= maxLine {
		return feedMore, append(echo, 0x07)
	}
	e.grow()
	e.buf = append(e.buf, b)
	return feedMore, append(echo, b)
}

// grow doubles the buffer before it is full, wiping the old array, so no
// copy of typed text is left behind by append.
func (e *editor) grow() {
	if len(e.buf) < cap(e.buf) {
		return
	}
	nb := make([]byte, len(e.buf), 2*cap(e.buf)+1)
	copy(nb, e.buf)
	clear(e.buf[:cap(e.buf)])
	e.buf = nb
}

// line returns the typed line. It is valid until reset.
func (e *editor) line() []byte { return e.buf }

// reset wipes the typed text.
func (e *editor) reset() {
	clear(e.buf[:cap(e.buf)])
	e.buf = e.buf[:0]
}
