package supervisor

import (
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
