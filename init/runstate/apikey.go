package runstate

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// KeyOwner is one service that gets a copy of the API key.
type KeyOwner struct {
	Dir      string // e.g. /run/kwyre/inference
	UID, GID uint32
}

// WriteAPIKeys generates a fresh key (32 random bytes, hex) and writes it
// as Dir/api-key for every owner: the folder mode 0500 and the file 0400,
// both owned by that service alone. The key itself is not returned: init
// has no use for it.
func WriteAPIKeys(owners []KeyOwner) error {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("generate api key: %w", err)
	}
	key := make([]byte, hex.EncodedLen(len(raw))+1)
	hex.Encode(key, raw[:])
	key[len(key)-1] = '\n'
	clear(raw[:])
	defer clear(key)
	for _, o := range owners {
		if err := writeKey(o, key); err != nil {
			return err
		}
	}
	return nil
}

func writeKey(o KeyOwner, key []byte) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("api key folder %s: %w", o.Dir, err)
	}
	p := filepath.Join(o.Dir, "api-key")
	os.Remove(p) // a fresh file each boot; O_EXCL below
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		return fmt.Errorf("api key %s: %w", p, err)
	}
	_, werr := f.Write(key)
	if werr == nil {
		werr = f.Chown(int(o.UID), int(o.GID))
	}
	if werr == nil {
		werr = f.Chmod(0o400)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chown(o.Dir, int(o.UID), int(o.GID))
	}
	if werr == nil {
		werr = os.Chmod(o.Dir, 0o500)
	}
	if werr != nil {
		os.Remove(p)
		return fmt.Errorf("api key %s: %w", p, werr)
	}
	return nil
}
