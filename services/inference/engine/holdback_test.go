package engine

import "testing"

func TestReleasable(t *testing.T) {
	for _, c := range []struct {
		name    string
		pending string
		stops   []string
		n       int
		stopped bool
	}{
		{"plain", "hello", nil, 5, false},
		{"empty", "", nil, 0, false},
		{"two-byte char cut", "caf\xc3", nil, 3, false},
		{"two-byte char whole", "caf\xc3\xa9", nil, 5, false},
		{"three-byte char cut after 1", "a\xe2", nil, 1, false},
		{"three-byte char cut after 2", "a\xe2\x9c", nil, 1, false},
		{"three-byte char whole", "a\xe2\x9c\x93", nil, 4, false},
		{"four-byte char cut after 3", "\xf0\x9f\x98", nil, 0, false},
		{"four-byte char whole", "\xf0\x9f\x98\x80", nil, 4, false},
		{"stray continuation byte", "a\x80", nil, 2, false},
		{"invalid lead", "a\xff", nil, 2, false},
		{"stop found", "one STOP two", []string{"STOP"}, 4, true},
		{"earliest stop wins", "a##b@@", []string{"@@", "##"}, 1, true},
		{"stop prefix held", "answer ST", []string{"STOP"}, 7, false},
		{"longest stop prefix held", "x abab", []string{"ababc", "bx"}, 2, false},
		{"stop prefix of second stop", "done\n\n", []string{"END", "\n\nUser:"}, 4, false},
		{"not a prefix", "answer SX", []string{"STOP"}, 9, false},
		{"empty stop ignored", "abc", []string{""}, 3, false},
		{"prefix and cut char", "x\xc3", []string{"\xc3\xa9!"}, 1, false},
		{"stop at start", "STOP", []string{"STOP"}, 0, true},
	} {
		var stops [][]byte
		for _, s := range c.stops {
			stops = append(stops, []byte(s))
		}
		n, stopped := releasable([]byte(c.pending), stops)
		if n != c.n || stopped != c.stopped {
			t.Errorf("%s: releasable(%q, %q) = %d, %v; want %d, %v", c.name, c.pending, c.stops, n, stopped, c.n, c.stopped)
		}
	}
}
