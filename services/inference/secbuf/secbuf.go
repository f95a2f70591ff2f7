// Package secbuf holds a conversation encrypted in RAM (layer L5).
//
// Each message is sealed with XChaCha20-Poly1305 under a per-conversation
// random 256-bit key that lives in a page outside the Go heap (mlocked where
// permitted, excluded from core dumps). Plaintext exists only while Open's
// callback runs, in a buffer that is overwritten before Open returns. Wipe
// overwrites every ciphertext with random bytes and zeroes the key.
package secbuf

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/kwyre/kwyre/services/inference/scrub"
)

// KeySize is the size of a conversation key in bytes (256 bits).
const KeySize = chacha20poly1305.KeySize

// ErrWiped is returned by every operation on a wiped buffer.
var ErrWiped = errors.New("secbuf: conversation buffer was wiped")

// Roles a message may have; the role is sealed together with the content.
var roles = []string{"system", "user", "assistant"}

func roleCode(role string) (byte, bool) {
	for i, r := range roles {
		if r == role {
			return byte(i), true
		}
	}
	return 0, false
}

// Message is one decrypted message. Content aliases Open's scratch buffer
// and is overwritten when the callback returns: copy nothing out of it that
// is not wiped afterwards.
type Message struct {
	Role    string
	Content []byte
}

// Buffer is a SecureConversationBuffer. It is safe for concurrent use.
type Buffer struct {
	mu      sync.Mutex
	key     *keyPage
	records [][]byte // nonce || ciphertext || tag, one per message
	bytes   int      // total plaintext bytes, to size Open's scratch buffer
}

// New returns an empty buffer with a fresh random key.
func New() (*Buffer, error) {
	page, err := newKeyPage()
	if err != nil {
		return nil, err
	}
	if _, err := rand.Read(page.key()); err != nil {
		page.destroy()
		return nil, fmt.Errorf("generate conversation key: %w", err)
	}
	return &Buffer{key: page}, nil
}

// additionalData binds a record to its position so records cannot be
// reordered, dropped from the middle or replayed into another slot.
func additionalData(index int) []byte {
	var ad [8]byte
	binary.BigEndian.PutUint64(ad[:], uint64(index))
	return ad[:]
}

// Append seals one message and adds it at the end of the conversation. The
// caller still owns content and must wipe it.
func (b *Buffer) Append(role string, content []byte) error {
	code, ok := roleCode(role)
	if !ok {
		return fmt.Errorf("secbuf: unknown role")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.key == nil {
		return ErrWiped
	}
	var err error
	scrub.Do(func() {
		var aead interface {
			Seal(dst, nonce, plaintext, additionalData []byte) []byte
		}
		aead, err = chacha20poly1305.NewX(b.key.key())
		if err != nil {
			return
		}
		plain := make([]byte, 1+len(content))
		plain[0] = code
		copy(plain[1:], content)
		rec := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plain)+chacha20poly1305.Overhead)
		if _, err = rand.Read(rec); err != nil {
			scrub.Bytes(plain)
			return
		}
		rec = aead.Seal(rec, rec[:chacha20poly1305.NonceSizeX], plain, additionalData(len(b.records)))
		scrub.Bytes(plain)
		b.records = append(b.records, rec)
		b.bytes += len(content)
	})
	if err != nil {
		return fmt.Errorf("secbuf: seal message: %w", err)
	}
	return nil
}

// Len reports the number of messages held.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.records)
}

// Open decrypts the whole conversation into one scratch buffer, calls fn
// with it and overwrites the scratch buffer before returning. fn must not
// keep any reference to the messages.
func (b *Buffer) Open(fn func(msgs []Message) error) error {
	b.mu.Lock()
	if b.key == nil {
		b.mu.Unlock()
		return ErrWiped
	}
	var (
		scratch []byte
		msgs    []Message
		err     error
	)
	scrub.Do(func() {
		var aead interface {
			Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
		}
		aead, err = chacha20poly1305.NewX(b.key.key())
		if err != nil {
			return
		}
		scratch = make([]byte, 0, b.bytes+len(b.records))
		msgs = make([]Message, 0, len(b.records))
		for i, rec := range b.records {
			start := len(scratch)
			nonce, sealed := rec[:chacha20poly1305.NonceSizeX], rec[chacha20poly1305.NonceSizeX:]
			scratch, err = aead.Open(scratch, nonce, sealed, additionalData(i))
			if err != nil || len(scratch) == start || int(scratch[start]) >= len(roles) {
				err = fmt.Errorf("secbuf: message %d failed authentication", i)
				return
			}
			msgs = append(msgs, Message{Role: roles[scratch[start]], Content: scratch[start+1:]})
		}
	})
	b.mu.Unlock()
	if err != nil {
		scrub.Bytes(scratch)
		return err
	}
	// fn runs outside scrub.Do: it may call into llama.cpp (cgo), which
	// runtime/secret does not survive. The scratch buffer is wiped anyway.
	err = fn(msgs)
	scrub.Bytes(scratch)
	clear(msgs)
	return err
}

// Wipe overwrites every ciphertext with random bytes and zeroes and unmaps
// the key. It is idempotent; every later call returns ErrWiped.
func (b *Buffer) Wipe() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, rec := range b.records {
		// crypto/rand.Read never fails on Linux ≥ 3.17; zero as a fallback.
		if _, err := rand.Read(rec); err != nil {
			clear(rec)
		}
	}
	clear(b.records)
	b.records = nil
	b.bytes = 0
	if b.key != nil {
		b.key.destroy()
		b.key = nil
	}
}

// Wiped reports whether Wipe was called.
func (b *Buffer) Wiped() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.key == nil
}
