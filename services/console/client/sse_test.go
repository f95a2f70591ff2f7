package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readEvents(r io.Reader) ([]string, error) {
	sr := newSSEReader(r)
	var out []string
	for {
		ev, err := sr.next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(ev))
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"lf", "data: a\n\ndata: b\n\n", []string{"a", "b"}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}},
		{"cr", "data: a\r\rdata: b\r\r", []string{"a", "b"}},
		{"no space", "data:a\n\n", []string{"a"}},
		{"two spaces keep one", "data:  a\n\n", []string{" a"}},
		{"multi-line data", "data: a\ndata: b\n\n", []string{"a\nb"}},
		{"comments and fields", ": keep-alive\nevent: x\nid: 3\nretry: 10\ndata: a\n\n", []string{"a"}},
		{"blank lines between", "\n\n\ndata: a\n\n\n\n", []string{"a"}},
		{"unterminated last event dropped", "data: a\n\ndata: b", []string{"a"}},
		{"empty data", "data:\n\n", []string{""}},
		{"json", `data: {"choices":[{"delta":{"content":"hi"}}]}` + "\n\ndata: [DONE]\n\n",
			[]string{`{"choices":[{"delta":{"content":"hi"}}]}`, "[DONE]"}},
	}
	for _, tt := range tests {
		for _, mode := range []string{"whole", "one-byte"} {
			var r io.Reader = strings.NewReader(tt.in)
			if mode == "one-byte" {
				r = iotest.OneByteReader(r)
			}
			got, err := readEvents(r)
			if err != nil {
				t.Errorf("%s/%s: %v", tt.name, mode, err)
				continue
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("%s/%s: got %q, want %q", tt.name, mode, got, tt.want)
			}
		}
	}
}

func TestSSEReaderLongLines(t *testing.T) {
	long := strings.Repeat("x", 100000)
	got, err := readEvents(iotest.HalfReader(strings.NewReader("data: " + long + "\n\ndata: y\n\n")))
	if err != nil || len(got) != 2 || got[0] != long || got[1] != "y" {
		t.Fatalf("long line: %d events, err %v", len(got), err)
	}
	_, err = readEvents(strings.NewReader("data: " + strings.Repeat("x", maxEventLine+10) + "\n\n"))
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("over-long line: err = %v, want a length error", err)
	}
}

func TestSSEReaderReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom))
	got, err := readEvents(r)
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Fatalf("got %q, %v; want one event and the read error", got, err)
	}
}

func TestSSEReaderWipe(t *testing.T) {
	sr := newSSEReader(strings.NewReader("data: secret words\n\n"))
	if _, err := sr.next(); err != nil {
		t.Fatal(err)
	}
	sr.wipe()
	for _, b := range sr.buf {
		if b != 0 {
			t.Fatal("read buffer not zeroed by wipe")
		}
	}
	for _, b := range sr.ev[:cap(sr.ev)] {
		if b != 0 {
			t.Fatal("event buffer not zeroed by wipe")
		}
	}
}
