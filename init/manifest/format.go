// Package manifest is the appliance's file manifest (layers L3 and L4): one
// line per regular file, "<sha256 hex>  <size>  <path>", sorted by path, with
// paths relative to the root being verified.
package manifest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// Entry is one line of a manifest.
type Entry struct {
	SHA256 string // 64 lowercase hex digits
	Size   int64
	Path   string // slash-separated, relative, clean
}

// String formats e as one manifest line, without the newline.
func (e Entry) String() string {
	return e.SHA256 + "  " + strconv.FormatInt(e.Size, 10) + "  " + e.Path
}

// maxLine bounds one manifest line: a hash, a size and a path of PATH_MAX.
const maxLine = 64 + 2 + 20 + 2 + 4096

// Parse reads a manifest. It rejects anything that is not exactly the
// format: malformed lines, unclean or absolute paths, duplicates and
// unsorted lines, naming the line. It also returns the SHA-256 of the bytes
// it read.
func Parse(r io.Reader) ([]Entry, string, error) {
	h := sha256.New()
	sc := bufio.NewScanner(io.TeeReader(r, h))
	sc.Buffer(make([]byte, 0, 4096), maxLine+1)
	var entries []Entry
	n := 0
	for sc.Scan() {
		n++
		e, err := parseLine(sc.Text())
		if err != nil {
			return nil, "", fmt.Errorf("manifest line %d: %w", n, err)
		}
		if len(entries) > 0 {
			prev := entries[len(entries)-1].Path
			if e.Path == prev {
				return nil, "", fmt.Errorf("manifest line %d: %q listed twice", n, e.Path)
			}
			if e.Path < prev {
				return nil, "", fmt.Errorf("manifest line %d: %q is out of order (after %q)", n, e.Path, prev)
			}
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("read manifest (after line %d): %w", n, err)
	}
	return entries, hex.EncodeToString(h.Sum(nil)), nil
}

func parseLine(line string) (Entry, error) {
	sum, rest, ok := strings.Cut(line, "  ")
	if !ok {
		return Entry{}, fmt.Errorf("want \"<sha256>  <size>  <path>\", got %q", line)
	}
	size, p, ok := strings.Cut(rest, "  ")
	if !ok {
		return Entry{}, fmt.Errorf("want \"<sha256>  <size>  <path>\", got %q", line)
	}
	if len(sum) != 64 || !isLowerHex(sum) {
		return Entry{}, fmt.Errorf("hash %q is not 64 lowercase hex digits", sum)
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != size {
		return Entry{}, fmt.Errorf("size %q is not a non-negative decimal number", size)
	}
	if err := checkPath(p); err != nil {
		return Entry{}, err
	}
	return Entry{SHA256: sum, Size: n, Path: p}, nil
}

// checkPath accepts only clean, relative, slash-separated paths that stay
// inside the root.
func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case strings.ContainsAny(p, "\x00\n\r"):
		return fmt.Errorf("path %q holds a control character", p)
	case path.IsAbs(p):
		return fmt.Errorf("path %q is absolute", p)
	case path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q is not clean or leaves the root", p)
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
