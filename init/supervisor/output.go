package supervisor

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
)

// lockedWriter serialises whole lines from many goroutines onto the console.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) printf(format string, args ...any) {
	fmt.Fprintf(l, format, args...)
}

// maxLine is where a line without a newline is cut for the console.
const maxLine = 4096

// routine reports whether line is a log record at INFO or DEBUG level, in
// slog's text format ("time=… level=INFO …") or the default logger's
// ("2026/11/25 10:00:59 INFO …", what the llama.cpp binding prints): what
// QuietConsole keeps off the console.
func routine(line []byte) bool {
	f := bytes.SplitN(line, []byte(" "), 4)
	switch {
	case len(f) >= 3 && bytes.HasPrefix(f[0], []byte("time=")):
		return bytes.Equal(f[1], []byte("level=INFO")) || bytes.Equal(f[1], []byte("level=DEBUG"))
	case len(f) >= 4 && len(f[0]) == 10 && f[0][4] == '/' && f[0][7] == '/' && len(f[1]) == 8 && f[1][2] == ':':
		return bytes.Equal(f[2], []byte("INFO")) || bytes.Equal(f[2], []byte("DEBUG"))
	}
	return false
}

// copyOutput copies a child's output to the console and the ring, one
// "name: line" at a time, until the child and its helpers close the pipe.
// With QuietConsole, routine lines go to the ring only.
func (s *Supervisor) copyOutput(name string, r *os.File) {
	defer r.Close()
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			msg := make([]byte, 0, len(name)+2+len(line)+1)
			msg = append(append(append(msg, name...), ": "...), line...)
			if msg[len(msg)-1] != '\n' {
				msg = append(msg, '\n')
			}
			if !s.opt.QuietConsole || !routine(line) {
				s.out.Write(msg)
			}
			if s.opt.Ring != nil {
				s.opt.Ring.Write(msg)
			}
			clear(msg)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}
