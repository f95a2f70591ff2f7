package shutdown

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Finding is one line the watchdog writes on its report pipe.
type Finding struct {
	Scanner string `json:"scanner"`
	What    string `json:"what"`
}

func (f Finding) String() string { return f.Scanner + ": " + f.What }

// ReadReports reads the watchdog's report pipe and calls report for every
// line. A line that is not the expected JSON still counts as an intrusion
// (fail closed), reported with scanner "watchdog" and the line, cut short
// and stripped of control characters. It returns when r ends.
func ReadReports(r io.Reader, report func(Finding)) error {
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			// A line longer than the buffer arrives in pieces; each counts.
			if s := strings.TrimSpace(string(line)); s != "" {
				var f Finding
				if jerr := json.Unmarshal([]byte(s), &f); jerr != nil || f.Scanner == "" {
					f = Finding{Scanner: "watchdog", What: "unreadable report: " + clean(s, 200)}
				} else {
					f.Scanner, f.What = clean(f.Scanner, 64), clean(f.What, 400)
				}
				report(f)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("read watchdog reports: %w", err)
		}
	}
}

// clean makes text safe to print on the console: no control characters (no
// escape sequences), at most max runes.
func clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
