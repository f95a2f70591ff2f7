package api

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// KeyDigest is the SHA-256 of the API key. Only the digest is kept; requests
// are compared digest against digest, so the time taken does not depend on
// the key's length or on where a wrong key first differs.
type KeyDigest [sha256.Size]byte

// Authorized reports whether the request carries `Authorization: Bearer KEY`
// with the right key.
func (d KeyDigest) Authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], d[:]) == 1
}

// minKeyLen is the shortest key accepted from a file.
const minKeyLen = 16

// LoadKey reads the API key from path. The file must be a regular file that
// neither group nor others can read.
func LoadKey(path string) (KeyDigest, error) {
	f, err := os.Open(path)
	if err != nil {
		return KeyDigest{}, fmt.Errorf("api key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return KeyDigest{}, fmt.Errorf("api key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return KeyDigest{}, fmt.Errorf("api key file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return KeyDigest{}, fmt.Errorf("api key file %s: mode %#o lets group or others read it; chmod 600 it", path, perm)
	}
	buf := make([]byte, 4096)
	n, err := f.Read(buf)
	defer clear(buf)
	if err != nil {
		return KeyDigest{}, fmt.Errorf("api key file %s: read: %w", path, err)
	}
	key := bytes.TrimSpace(buf[:n])
	if len(key) < minKeyLen {
		return KeyDigest{}, fmt.Errorf("api key file %s: key shorter than %d characters", path, minKeyLen)
	}
	if bytes.ContainsAny(key, " \t\r\n") {
		return KeyDigest{}, fmt.Errorf("api key file %s: key contains whitespace", path)
	}
	return sha256.Sum256(key), nil
}

// CreateKey writes a fresh random key to path (which must not exist yet),
// mode 0600, and returns its digest. With path "" it creates a private
// directory under the system's temporary directory and returns the file's
// path.
func CreateKey(path string) (string, KeyDigest, error) {
	if path == "" {
		dir, err := os.MkdirTemp("", "kwyre-inference-")
		if err != nil {
			return "", KeyDigest{}, fmt.Errorf("create api key directory: %w", err)
		}
		path = filepath.Join(dir, "api-key")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", KeyDigest{}, fmt.Errorf("generate api key: %w", err)
	}
	key := make([]byte, hex.EncodedLen(len(raw)))
	hex.Encode(key, raw[:])
	defer clear(key)
	clear(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", KeyDigest{}, fmt.Errorf("create api key file: %w", err)
	}
	if _, err := f.Write(append(key, '\n')); err != nil {
		f.Close()
		os.Remove(path)
		return "", KeyDigest{}, fmt.Errorf("write api key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", KeyDigest{}, fmt.Errorf("write api key file %s: %w", path, err)
	}
	return path, sha256.Sum256(key), nil
}

// LoadOrCreateKey reads the key at path, or creates one there if the file
// does not exist (or in a new private directory if path is ""). created
// reports whether a new key was written.
func LoadOrCreateKey(path string) (usedPath string, d KeyDigest, created bool, err error) {
	if path != "" {
		d, err = LoadKey(path)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return path, d, false, err
		}
	}
	usedPath, d, err = CreateKey(path)
	return usedPath, d, err == nil, err
}
