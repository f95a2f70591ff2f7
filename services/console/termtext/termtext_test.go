package termtext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain", "hello, world", "hello, world"},
		{"newline tab", "a\nb\tc", "a\nb\tc"},
		{"cr dropped", "a\r\nb", "a\nb"},
		{"csi", "x\x1b[2J\x1b[31my", "x[2J[31my"},
		{"osc title", "\x1b]0;pwned\x07ok", "]0;pwnedok"},
		{"c0 and del", "a\x00\x01\x08\x7fb", "ab"},
		{"c1 csi", "a\u009b2Jb", "a2Jb"},
		{"raw 8-bit csi", "a\x9b2Jb", "a\uFFFD2Jb"},
		{"unicode", "héllo 世界 🙂", "héllo 世界 🙂"},
		{"invalid", "a\xffb", "a\uFFFDb"},
		{"truncated at end", "a\xe4\xb8", "a\uFFFD"},
	}
	for _, tt := range tests {
		if got := String(tt.in); got != tt.want {
			t.Errorf("%s: String(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

// Splitting the input at every possible point gives the same output as
// filtering it whole: multi-byte runes survive piecewise streaming.
func TestFilterSplits(t *testing.T) {
	inputs := []string{"héllo 世界 🙂 ok", "a\u009bb\x1b[1mc", "x\xffy\xe4\xb8\x96z"}
	for _, in := range inputs {
		want := String(in)
		for i := 0; i <= len(in); i++ {
			for j := i; j <= len(in); j++ {
				var f Filter
				out := f.Append(nil, []byte(in[:i]))
				out = f.Append(out, []byte(in[i:j]))
				out = f.Append(out, []byte(in[j:]))
				out = f.Flush(out)
				if string(out) != want {
					t.Fatalf("split %q at %d,%d: %q, want %q", in, i, j, out, want)
				}
			}
		}
		// One byte at a time.
		var f Filter
		var out []byte
		for k := 0; k < len(in); k++ {
			out = f.Append(out, []byte{in[k]})
		}
		if string(f.Flush(out)) != want {
			t.Fatalf("byte-wise %q: %q, want %q", in, out, want)
		}
	}
}

func FuzzFilter(f *testing.F) {
	f.Add([]byte("héllo\x1b[2J\u009b"), 3)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		var fl Filter
		if cut < 0 || cut > len(in) {
			cut = len(in) / 2
		}
		out := fl.Append(nil, in[:cut])
		out = fl.Append(out, in[cut:])
		out = fl.Flush(out)
		if !utf8.Valid(out) {
			t.Fatalf("output not valid UTF-8: %q", out)
		}
		for _, r := range string(out) {
			if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
				t.Fatalf("control %U passed: %q", r, out)
			}
		}
		if strings.ContainsRune(string(out), 0x1b) {
			t.Fatal("ESC passed")
		}
	})
}
