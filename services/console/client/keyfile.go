package client

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// maxKeyFile bounds the key file; a key is a short token.
const maxKeyFile = 4096

// ReadKeyFile reads the API key init hands the console, without the
// surrounding whitespace. The returned slice is the caller's to wipe.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read api key: %w", err)
	}
	defer f.Close()
	buf := make([]byte, maxKeyFile+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		clear(buf)
		return nil, fmt.Errorf("read api key %s: %w", path, err)
	}
	if n > maxKeyFile {
		clear(buf)
		return nil, fmt.Errorf("read api key %s: longer than %d bytes", path, maxKeyFile)
	}
	key := bytes.TrimSpace(buf[:n])
	out := bytes.Clone(key)
	clear(buf)
	if len(out) == 0 {
		return nil, fmt.Errorf("read api key %s: file is empty", path)
	}
	for _, c := range out {
		if c < 0x21 || c > 0x7e {
			clear(out)
			return nil, fmt.Errorf("read api key %s: key holds a character not allowed in a header", path)
		}
	}
	return out, nil
}
