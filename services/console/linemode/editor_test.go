package linemode

import (
	"strings"
	"testing"
)

// run feeds in to a fresh editor and returns the lines it ended (aborted
// lines as "<abort>"), the echo, and what is left unterminated.
func runEditor(in string) (lines []string, echo string, rest string) {
	e := newEditor()
	var out []byte
	for i := 0; i < len(in); i++ {
		var res feedResult
		res, out = e.feed(in[i], out)
		switch res {
		case feedLine:
			lines = append(lines, string(e.line()))
			e.reset()
		case feedAbort:
			lines = append(lines, "<abort>")
		}
	}
	return lines, string(out), string(e.line())
}

func TestEditor(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		lines []string
		echo  string
		rest  string
	}{
		{"lf", "hi\n", []string{"hi"}, "hi\n", ""},
		{"cr", "hi\r", []string{"hi"}, "hi\n", ""},
		{"crlf is one end", "a\r\nb\r\n", []string{"a", "b"}, "a\nb\n", ""},
		{"lf lf is two", "a\n\n", []string{"a", ""}, "a\n\n", ""},
		{"cr cr is two", "a\r\r", []string{"a", ""}, "a\n\n", ""},
		{"backspace", "abc\x7fd\n", []string{"abd"}, "abc\b \bd\n", ""},
		{"ctrl-h", "ab\x08\x08\x08c\r", []string{"c"}, "ab\b \b\b \bc\n", ""},
		{"backspace utf-8", "né\x7f\x7fx\n", []string{"x"}, "né\b \b\b \bx\n", ""},
		{"ctrl-u", "hello\x15bye\n", []string{"bye"}, "hello\b \b\b \b\b \b\b \b\b \bbye\n", ""},
		{"ctrl-c", "oops\x03ok\r", []string{"<abort>", "ok"}, "oops^C\nok\n", ""},
		{"arrows ignored", "a\x1b[Ab\x1bOCc\x1b[1;5Dd\n", []string{"abcd"}, "abcd\n", ""},
		{"alt-key dropped", "a\x1bxb\n", []string{"ab"}, "ab\n", ""},
		{"controls ignored", "a\x01\x02\x04\x07b\n", []string{"ab"}, "ab\n", ""},
		{"tab is space", "a\tb\n", []string{"a b"}, "a b\n", ""},
		{"unterminated", "partial", nil, "partial", "partial"},
	}
	for _, tt := range tests {
		lines, echo, rest := runEditor(tt.in)
		if strings.Join(lines, "|") != strings.Join(tt.lines, "|") || len(lines) != len(tt.lines) {
			t.Errorf("%s: lines %q, want %q", tt.name, lines, tt.lines)
		}
		if echo != tt.echo {
			t.Errorf("%s: echo %q, want %q", tt.name, echo, tt.echo)
		}
		if rest != tt.rest {
			t.Errorf("%s: rest %q, want %q", tt.name, rest, tt.rest)
		}
	}
}

func TestEditorLimitAndWipe(t *testing.T) {
	e := newEditor()
	var echo []byte
	for i := 0; i < maxLine+5; i++ {
		_, echo = e.feed('x', echo[:0])
	}
	if len(e.line()) != maxLine || string(echo) != "\a" {
		t.Fatalf("line length %d, last echo %q; want %d and a bell", len(e.line()), echo, maxLine)
	}
	buf := e.buf[:cap(e.buf)]
	e.reset()
	for _, b := range buf {
		if b != 0 {
			t.Fatal("reset left typed text in the buffer")
		}
	}
}
