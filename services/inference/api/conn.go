package api

import (
	"net"
	"net/http"
)

// wipingListener hands net/http connections whose Read first zeroes the
// buffer it is given. net/http reads requests through a pooled 4 KiB
// bufio.Reader; each fill reads into the buffer's free space, which is where
// the bytes of the previous, fully consumed request lie. Zeroing it there
// (io.Reader lets Read use all of p as scratch) erases a request's raw body,
// message text included, as soon as the connection waits for its next
// request, instead of leaving it until the buffer is reused.
type wipingListener struct{ net.Listener }

func (l wipingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wipingConn{c}, nil
}

type wipingConn struct{ net.Conn }

func (c wipingConn) Read(p []byte) (int, error) {
	clear(p)
	return c.Conn.Read(p)
}

// padBytes and padChunk size the padding written after a chat answer: net/http
// copies a response through a 2 KiB bufio.Writer and then the connection's
// 4 KiB one, both pooled; writing more than both hold, in pieces smaller than
// either, overwrites what they held of the answer.
const (
	padBytes = 8 << 10
	padChunk = 1 << 10
)

// padPiece is one padding write: a run of spaces ending in a newline. As SSE
// it must start with ':' (a comment); in JSON it is trailing whitespace.
var padPiece = func() []byte {
	b := make([]byte, padChunk)
	for i := range b {
		b[i] = ' '
	}
	b[len(b)-2], b[len(b)-1] = '\n', '\n'
	return b
}()

var ssePadPiece = func() []byte {
	b := append([]byte(nil), padPiece...)
	b[0] = ':'
	return b
}()

// writePadding pushes padBytes of piece through w, in padChunk writes.
func writePadding(w http.ResponseWriter, piece []byte) {
	for n := 0; n < padBytes; n += len(piece) {
		if _, err := w.Write(piece); err != nil {
			return
		}
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}
