// Package termtext makes model output safe to print on a terminal: a model
// (or a tampered one) must not be able to move the cursor, retitle, remap or
// otherwise drive the console with escape sequences.
package termtext

import "unicode/utf8"

// Filter passes text through, streamed in pieces that may split a UTF-8
// sequence, keeping newlines and tabs and dropping every other control
// character (C0, DEL, C1, hence ESC and CSI). Invalid UTF-8 becomes U+FFFD.
// The zero value is ready to use.
type Filter struct {
	part [utf8.UTFMax]byte // an incomplete sequence carried to the next piece
	n    int
}

// Append filters src and appends the result to dst.
func (f *Filter) Append(dst, src []byte) []byte {
	for len(src) > 0 {
		if f.n > 0 {
			// Complete the carried sequence a byte at a time.
			f.part[f.n] = src[0]
			f.n++
			src = src[1:]
			if utf8.FullRune(f.part[:f.n]) {
				dst = appendRunes(dst, f.part[:f.n])
				clear(f.part[:])
				f.n = 0
			}
			continue
		}
		i := 0
		for i < len(src) {
			c := src[i]
			if c < utf8.RuneSelf {
				i++
				continue
			}
			if !utf8.FullRune(src[i:]) {
				break
			}
			_, size := utf8.DecodeRune(src[i:])
			i += size
		}
		dst = appendRunes(dst, src[:i])
		src = src[i:]
		if len(src) > 0 {
			// An incomplete sequence at the end of the piece.
			f.n = copy(f.part[:], src)
			src = nil
		}
	}
	return dst
}

// Flush ends the stream: a sequence still incomplete becomes U+FFFD.
func (f *Filter) Flush(dst []byte) []byte {
	if f.n > 0 {
		dst = utf8.AppendRune(dst, utf8.RuneError)
		clear(f.part[:])
		f.n = 0
	}
	return dst
}

// appendRunes appends the allowed runes of b.
func appendRunes(dst, b []byte) []byte {
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != 0x7f || c == '\n' || c == '\t' {
				dst = append(dst, c)
			}
			b = b[1:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size == 1:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		case r >= 0x80 && r <= 0x9f: // C1 controls
		default:
			dst = append(dst, b[:size]...)
		}
		b = b[size:]
	}
	return dst
}

// String filters a whole string (for text that does not stream).
func String(s string) string {
	var f Filter
	out := f.Append(nil, []byte(s))
	return string(f.Flush(out))
}
