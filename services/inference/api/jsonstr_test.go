package api

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestAppendUnescapedMatchesEncodingJSON(t *testing.T) {
	tests := []string{
		`""`,
		`"plain text"`,
		`"quote \" backslash \\ slash \/"`,
		`"ctl \b\f\n\r\t"`,
		`"\u00e9\u4e2d\u0041"`,
		`"pair \ud83d\ude00 end"`,
		`"lone high \ud83d end"`,
		`"lone low \ude00 end"`,
		`"high then non-low \ud83d\u0041"`,
		`"raw utf8 ✓ 中文"`,
	}
	for _, raw := range tests {
		t.Run(raw, func(t *testing.T) {
			var want string
			if err := json.Unmarshal([]byte(raw), &want); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			got, err := appendUnescaped(nil, []byte(raw))
			if err != nil {
				t.Fatalf("appendUnescaped: %v", err)
			}
			if string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			if len(got) > len(raw) {
				t.Fatalf("decoded %d bytes from %d: grows", len(got), len(raw))
			}
		})
	}
}

func TestAppendUnescapedRejects(t *testing.T) {
	for _, raw := range []string{``, `"`, `abc`, `"abc`, `"\"`, `"\x"`, `"\u12"`, `"\u12zz"`, "\"tab\tinside\"", `"a"b"`} {
		if _, err := appendUnescaped(nil, []byte(raw)); err == nil {
			t.Errorf("appendUnescaped(%q) accepted", raw)
		}
	}
}

func TestAppendEscapedRoundTrip(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello", "hello"},
		{"a\"b\\c", "a\"b\\c"},
		{"line\nnext\ttab\r\x00\x1f", "line\nnext\ttab\r\x00\x1f"},
		{"<script>&", "<script>&"},
		{"✓ 中文 😀", "✓ 中文 😀"},
		{"bad \xff byte", "bad \ufffd byte"},
		{"sep \u2028 \u2029", "sep \u2028 \u2029"},
	}
	for _, tt := range tests {
		lit := append([]byte{'"'}, appendEscaped(nil, []byte(tt.in))...)
		lit = append(lit, '"')
		var got string
		if err := json.Unmarshal(lit, &got); err != nil {
			t.Fatalf("%q escaped to invalid JSON %s: %v", tt.in, lit, err)
		}
		if got != tt.want {
			t.Errorf("%q round-trips to %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCompletePrefix(t *testing.T) {
	euro := []byte("€")  // 3 bytes
	emoji := []byte("😀") // 4 bytes
	tests := []struct {
		in   []byte
		want int
	}{
		{nil, 0},
		{[]byte("abc"), 3},
		{euro, 3},
		{euro[:1], 0},
		{euro[:2], 0},
		{append([]byte("ab"), emoji[:3]...), 2},
		{append([]byte("ab"), emoji...), 6},
		{[]byte{0x80, 0x80, 0x80, 0x80}, 4}, // garbage: let the escaper replace it
	}
	for _, tt := range tests {
		if got := completePrefix(tt.in); got != tt.want {
			t.Errorf("completePrefix(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func FuzzAppendUnescaped(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9"`, `"\ud83d\ude00"`, `"\n"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Callers trim the whitespace JSON allows around a value.
		raw = bytes.TrimSpace(raw)
		got, err := appendUnescaped(nil, raw)
		var want string
		jerr := json.Unmarshal(raw, &want)
		if jerr == nil && len(raw) > 0 && raw[0] == '"' {
			if err != nil {
				t.Fatalf("rejected valid %q: %v", raw, err)
			}
			if utf8.Valid(raw) && string(got) != want {
				t.Fatalf("%q: got %q want %q", raw, got, want)
			}
		}
		if err == nil && len(got) > len(raw) {
			t.Fatalf("grew: %d > %d", len(got), len(raw))
		}
	})
}
