package scan

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// procNetLines reads a /proc/net table and returns the fields of each line
// after the header.
func procNetLines(path string) ([][]string, error) {
	lines, err := procLines(path)
	if len(lines) > 0 {
		lines = lines[1:]
	}
	return lines, err
}

// procLines returns the whitespace-separated fields of each non-empty line.
func procLines(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		if fl := strings.Fields(sc.Text()); len(fl) > 0 {
			out = append(out, fl)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}
