package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxEventLine bounds one line of the event stream.
const maxEventLine = 1 << 20

// sseReader splits a server-sent-event stream into events. It reads into
// buffers it owns, so the plaintext that passes through them can be wiped.
type sseReader struct {
	r          io.Reader
	buf        []byte // raw bytes read, buf[start:end] not yet consumed
	start, end int
	ev         []byte // data of the event being assembled
	hasData    bool
	eof        bool
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: r, buf: make([]byte, 4096), ev: make([]byte, 0, 1024)}
}

// line returns the next line without its terminator (LF, CRLF or CR). The
// slice is valid until the next call.
func (s *sseReader) line() ([]byte, error) {
	for {
		chunk := s.buf[s.start:s.end]
		if i := bytes.IndexAny(chunk, "\r\n"); i >= 0 {
			// A CR at the end of what we have may be the first half of CRLF.
			if chunk[i] == '\r' && i+1 == len(chunk) && !s.eof {
				if err := s.fill(); err != nil {
					return nil, err
				}
				continue
			}
			l := chunk[:i]
			n := i + 1
			if chunk[i] == '\r' && i+1 < len(chunk) && chunk[i+1] == '\n' {
				n++
			}
			s.start += n
			return l, nil
		}
		if s.eof {
			if len(chunk) > 0 {
				s.start = s.end
				return chunk, nil
			}
			return nil, io.EOF
		}
		if err := s.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more input, compacting or growing the buffer first.
func (s *sseReader) fill() error {
	if s.start > 0 {
		n := copy(s.buf, s.buf[s.start:s.end])
		clear(s.buf[n:s.end])
		s.start, s.end = 0, n
	}
	if s.end == len(s.buf) {
		if len(s.buf) >= maxEventLine {
			return fmt.Errorf("event stream: line longer than %d bytes", maxEventLine)
		}
		nb := make([]byte, 2*len(s.buf))
		copy(nb, s.buf[:s.end])
		clear(s.buf)
		s.buf = nb
	}
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if errors.Is(err, io.EOF) {
		s.eof = true
		return nil
	}
	return err
}

// next returns the data of the next event with data lines joined by "\n".
// The slice is valid until the next call. At the end of the stream it
// returns io.EOF (an unterminated last event is dropped, as the SSE rules say).
func (s *sseReader) next() ([]byte, error) {
	s.resetEvent()
	for {
		l, err := s.line()
		if err != nil {
			return nil, err
		}
		if len(l) == 0 {
			if s.hasData {
				return s.ev, nil
			}
			continue
		}
		if l[0] == ':' {
			continue // comment, used as keep-alive
		}
		field, value, found := bytes.Cut(l, []byte{':'})
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if string(field) != "data" {
			continue // event, id, retry: nothing the console needs
		}
		if s.hasData {
			s.ev = append(s.ev, '\n')
		}
		s.ev = s.appendEvent(value)
		s.hasData = true
	}
}

// appendEvent appends to ev, wiping the old array when append must move it.
func (s *sseReader) appendEvent(v []byte) []byte {
	if len(s.ev)+len(v) > cap(s.ev) {
		nb := make([]byte, len(s.ev), 2*(len(s.ev)+len(v)))
		copy(nb, s.ev)
		clear(s.ev[:cap(s.ev)])
		s.ev = nb
	}
	return append(s.ev, v...)
}

func (s *sseReader) resetEvent() {
	clear(s.ev)
	s.ev = s.ev[:0]
	s.hasData = false
}

// wipe zeroes everything the reader has held.
func (s *sseReader) wipe() {
	clear(s.buf)
	clear(s.ev[:cap(s.ev)])
	s.start, s.end = 0, 0
	s.ev = s.ev[:0]
}
