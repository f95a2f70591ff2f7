// Package session keeps the table of live conversations (layer L5) and ends
// them (layer L5a): on request, on idle timeout and on signals.
package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"time"

	"github.com/kwyre/kwyre/services/inference/secbuf"
)

// Reasons a session is wiped; they label the wipe counters in /metrics.
const (
	ReasonEnd      = "end"
	ReasonIdle     = "idle_timeout"
	ReasonShutdown = "shutdown"
	ReasonSignal   = "sigusr1"
)

// idPrefix starts every session id; the rest is 128 random bits in hex.
const idPrefix = "sess_"

// ErrBusy is returned by Lock when the context ends before the session's
// previous turn has finished.
var ErrBusy = errors.New("session: another turn of this session is still running")

// Session is one conversation: its encrypted buffer and a turn lock so that
// its turns run one at a time, in order.
type Session struct {
	ID  string
	Buf *secbuf.Buffer

	turn     chan struct{}
	done     chan struct{} // closed when the session is wiped
	lastUsed atomic.Int64  // unix nanoseconds
	created  time.Time
}

func newSession() (*Session, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	buf, err := secbuf.New()
	if err != nil {
		return nil, err
	}
	s := &Session{ID: idPrefix + hex.EncodeToString(raw[:]), Buf: buf, turn: make(chan struct{}, 1), done: make(chan struct{}), created: time.Now()}
	s.Touch()
	return s, nil
}

// Lock waits for the session's turn lock; it fails with ErrBusy if ctx ends
// first.
func (s *Session) Lock(ctx context.Context) error {
	select {
	case s.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ErrBusy
	}
}

// tryLock takes the turn lock if it is free.
func (s *Session) tryLock() bool {
	select {
	case s.turn <- struct{}{}:
		return true
	default:
		return false
	}
}

// Unlock releases the turn lock and marks the session as used now.
func (s *Session) Unlock() {
	s.Touch()
	<-s.turn
}

// Done is closed when the session is wiped: a turn in flight stops.
func (s *Session) Done() <-chan struct{} { return s.done }

// Touch records activity for the idle timeout.
func (s *Session) Touch() { s.lastUsed.Store(time.Now().UnixNano()) }

// LastUsed is the time of the session's last activity.
func (s *Session) LastUsed() time.Time { return time.Unix(0, s.lastUsed.Load()) }

// ValidID reports whether id has the form of a session id; anything else is
// refused before a table lookup.
func ValidID(id string) bool {
	if len(id) != len(idPrefix)+32 || id[:len(idPrefix)] != idPrefix {
		return false
	}
	for _, c := range id[len(idPrefix):] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
