package engine

import (
	"bytes"
	"unicode/utf8"
)

// releasable says how much of pending, the generated text not yet emitted,
// may be emitted now, and whether a stop sequence ends it (the text before
// the stop is then pending[:n]). It holds back a tail that could still grow
// into a stop sequence and a trailing incomplete UTF-8 sequence, so a client
// never sees half a character or the start of a stop sequence. The caller
// emits everything still pending when generation ends for another reason.
func releasable(pending []byte, stops [][]byte) (n int, stopped bool) {
	first := -1
	for _, s := range stops {
		if len(s) == 0 {
			continue
		}
		if i := bytes.Index(pending, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		return first, true
	}
	n = len(pending) - stopPrefixLen(pending, stops)
	return n - incompleteUTF8(pending[:n]), false
}

// stopPrefixLen is the length of the longest tail of p that is a proper
// prefix of a stop sequence.
func stopPrefixLen(p []byte, stops [][]byte) int {
	best := 0
	for _, s := range stops {
		for k := min(len(p), len(s)-1); k > best; k-- {
			if bytes.HasPrefix(s, p[len(p)-k:]) {
				best = k
				break
			}
		}
	}
	return best
}

// incompleteUTF8 is the length of a multi-byte sequence cut off at p's end
// (a lead byte followed by fewer continuation bytes than it announces), or 0.
// Invalid bytes are not held: they would never complete.
func incompleteUTF8(p []byte) int {
	for k := 1; k <= min(len(p), utf8.UTFMax-1); k++ {
		b := p[len(p)-k]
		if b&0xC0 == 0x80 { // continuation byte: keep looking for the lead
			continue
		}
		var need int
		switch {
		case b&0xE0 == 0xC0:
			need = 2
		case b&0xF0 == 0xE0:
			need = 3
		case b&0xF8 == 0xF0:
			need = 4
		default: // ASCII or invalid lead
			return 0
		}
		if k < need {
			return k
		}
		return 0
	}
	return 0
}
