package supervisor

import (
	"os"
	"strings"
	"testing"
)

func TestRing(t *testing.T) {
	tests := []struct {
		size   int
		writes []string
		want   string
	}{
		{8, nil, ""},
		{8, []string{"abc"}, "abc"},
		{8, []string{"abc", "defgh"}, "abcdefgh"},
		{8, []string{"abc", "defgh", "ij"}, "cdefghij"},
		{8, []string{"abcdefghijkl"}, "efghijkl"},
		{8, []string{"abcdef", "ghijkl"}, "efghijkl"},
		{4, []string{"a", "b", "c", "d", "e", "f"}, "cdef"},
		{4, []string{"ab", "", "cd", "e"}, "bcde"},
	}
	for _, tt := range tests {
		r := NewRing(tt.size)
		for _, w := range tt.writes {
			if n, _ := r.Write([]byte(w)); n != len(w) {
				t.Fatalf("Write returned %d", n)
			}
		}
		if got := string(r.Bytes()); got != tt.want {
			t.Errorf("size %d writes %q: got %q, want %q", tt.size, tt.writes, got, tt.want)
		}
	}
}

func TestRingWipe(t *testing.T) {
	r := NewRing(16)
	r.Write([]byte(strings.Repeat("secret", 4)))
	r.Wipe()
	if len(r.Bytes()) != 0 {
		t.Fatal("ring not empty after Wipe")
	}
	for _, b := range r.buf {
		if b != 0 {
			t.Fatal("ring memory not zeroed")
		}
	}
}

func TestQuietConsole(t *testing.T) {
	out := "time=2026-11-25T09:00:00Z level=INFO msg=chat prompt_tokens=12\n" +
		"time=2026-11-25T09:00:01Z level=WARN msg=\"slot busy\"\n" +
		"time=2026-11-25T09:00:02Z level=DEBUG msg=x\n" +
		"2026/11/25 10:00:59 INFO system CPU.0.AVX2=1\n" +
		"2026/11/25 10:00:59 WARN no GPU\n" +
		"10:00:59 INFO x\n" +
		"panic: runtime error\n" +
		"msg=\"time=1 level=INFO x\"\n" +
		"time=2026-11-25T09:00:03Z level=ERROR msg=failed"
	for _, quiet := range []bool{false, true} {
		var console strings.Builder
		ring := NewRing(4096)
		s := &Supervisor{opt: Options{QuietConsole: quiet, Ring: ring}, out: &lockedWriter{w: &console}}
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() { w.WriteString(out); w.Close() }()
		s.copyOutput("svc", r)
		all := "svc: " + strings.ReplaceAll(out, "\n", "\nsvc: ") + "\n"
		if got := string(ring.Bytes()); got != all {
			t.Errorf("quiet %v: ring\n%s\nwant every line\n%s", quiet, got, all)
		}
		want := all
		if quiet {
			want = "svc: time=2026-11-25T09:00:01Z level=WARN msg=\"slot busy\"\n" +
				"svc: 2026/11/25 10:00:59 WARN no GPU\n" +
				"svc: 10:00:59 INFO x\n" +
				"svc: panic: runtime error\n" +
				"svc: msg=\"time=1 level=INFO x\"\n" +
				"svc: time=2026-11-25T09:00:03Z level=ERROR msg=failed\n"
		}
		if got := console.String(); got != want {
			t.Errorf("quiet %v: console\n%s\nwant\n%s", quiet, got, want)
		}
	}
}
