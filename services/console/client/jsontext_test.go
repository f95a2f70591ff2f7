package client

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestAppendJSONStringRoundTrip(t *testing.T) {
	tests := []string{
		"",
		"hello",
		"quote \" backslash \\ slash /",
		"lines\nand\r\ttabs",
		"control \x00\x01\x1f\x7f",
		"unicode: héllo 世界 🙂",
		"</script>&<>",
	}
	for _, in := range tests {
		q := appendJSONString(nil, []byte(in))
		var got string
		if err := json.Unmarshal(q, &got); err != nil {
			t.Errorf("appendJSONString(%q) = %s: not valid JSON: %v", in, q, err)
			continue
		}
		if got != in {
			t.Errorf("appendJSONString(%q) decodes to %q", in, got)
		}
		back, err := appendUnquoted(nil, q)
		if err != nil || string(back) != in {
			t.Errorf("appendUnquoted(%s) = %q, %v; want %q", q, back, err, in)
		}
	}
}

func TestAppendJSONStringInvalidUTF8(t *testing.T) {
	q := appendJSONString(nil, []byte{'a', 0xff, 'b'})
	var got string
	if err := json.Unmarshal(q, &got); err != nil {
		t.Fatalf("invalid JSON %s: %v", q, err)
	}
	if got != "a\uFFFDb" {
		t.Fatalf("got %q, want a\\uFFFDb", got)
	}
}

func TestAppendUnquoted(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{`"plain"`, "plain", false},
		{`"a\"b\\c\/d"`, `a"b\c/d`, false},
		{`"\b\f\n\r\t"`, "\b\f\n\r\t", false},
		{`"\u00e9\u4E16"`, "é世", false},
		{`"\ud83d\ude42"`, "🙂", false},
		{`"\ud83d"`, "\uFFFD", false}, // lone surrogate, as encoding/json does
		{`"\ud83dx"`, "\uFFFDx", false},
		{`""`, "", false},
		{`"abc`, "", true},
		{`abc"`, "", true},
		{`"`, "", true},
		{`"\x"`, "", true},
		{`"\u12"`, "", true},
		{`"\u12zz"`, "", true},
		{`"a\"`, "", true},
		{"\"a\nb\"", "", true},
		{`"a"b"`, "", true},
	}
	for _, tt := range tests {
		got, err := appendUnquoted(nil, []byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("appendUnquoted(%s) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && string(got) != tt.want {
			t.Errorf("appendUnquoted(%s) = %q, want %q", tt.in, got, tt.want)
		}
		if !tt.wantErr {
			var std string
			if err := json.Unmarshal([]byte(tt.in), &std); err != nil || std != tt.want {
				t.Errorf("encoding/json disagrees on %s: %q, %v", tt.in, std, err)
			}
		}
	}
}

func FuzzAppendUnquoted(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9"`, `"\ud83d\ude42"`, `"\n"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		if !utf8.Valid(q) {
			// Raw bytes pass through on purpose: a token may end inside a
			// UTF-8 sequence, and termtext.Filter joins the pieces.
			return
		}
		got, err := appendUnquoted(nil, q)
		var std string
		stdErr := json.Unmarshal(q, &std)
		if err == nil && stdErr == nil && string(got) != std {
			t.Fatalf("appendUnquoted(%q) = %q, encoding/json says %q", q, got, std)
		}
		if err == nil && stdErr != nil && len(q) > 0 && q[0] == '"' {
			t.Fatalf("appendUnquoted accepted %q that encoding/json rejects: %v", q, stdErr)
		}
	})
}
