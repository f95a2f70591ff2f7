package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrFull is returned by Create when the table holds its maximum.
var ErrFull = errors.New("session: too many active sessions")

// Table holds the live sessions. OnWipe runs after a session's buffer was
// wiped, outside the table lock: the service clears the engine's KV cells of
// that owner there and counts the wipe.
type Table struct {
	max    int
	onWipe func(id, reason string)

	mu       sync.Mutex
	sessions map[string]*Session
}

// NewTable returns an empty table holding at most max sessions.
func NewTable(max int, onWipe func(id, reason string)) *Table {
	if onWipe == nil {
		onWipe = func(string, string) {}
	}
	return &Table{max: max, onWipe: onWipe, sessions: make(map[string]*Session)}
}

// Create starts a new, empty session.
func (t *Table) Create() (*Session, error) {
	t.mu.Lock()
	full := len(t.sessions) >= t.max
	t.mu.Unlock()
	if full {
		return nil, fmt.Errorf("%w (limit %d)", ErrFull, t.max)
	}
	s, err := newSession()
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	t.mu.Lock()
	if len(t.sessions) >= t.max {
		t.mu.Unlock()
		s.Buf.Wipe()
		return nil, fmt.Errorf("%w (limit %d)", ErrFull, t.max)
	}
	t.sessions[s.ID] = s
	t.mu.Unlock()
	return s, nil
}

// Get returns the live session with that id.
func (t *Table) Get(id string) (*Session, bool) {
	if !ValidID(id) {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.sessions[id]
	return s, ok
}

// Len is the number of live sessions.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sessions)
}

// End removes and wipes one session; it reports whether the id was live.
// A turn still running on it finds its buffer wiped and fails.
func (t *Table) End(id, reason string) bool {
	if !ValidID(id) {
		return false
	}
	t.mu.Lock()
	s, ok := t.sessions[id]
	delete(t.sessions, id)
	t.mu.Unlock()
	if !ok {
		return false
	}
	t.wipe(s, reason)
	return true
}

// WipeAll removes and wipes every session and returns how many there were.
func (t *Table) WipeAll(reason string) int {
	t.mu.Lock()
	all := t.sessions
	t.sessions = make(map[string]*Session)
	t.mu.Unlock()
	for _, s := range all {
		t.wipe(s, reason)
	}
	return len(all)
}

// ReapIdle wipes every session idle for longer than timeout at now, except
// those in the middle of a turn, and returns how many it wiped.
func (t *Table) ReapIdle(now time.Time, timeout time.Duration) int {
	var idle []*Session
	t.mu.Lock()
	for id, s := range t.sessions {
		if now.Sub(s.LastUsed()) <= timeout || !s.tryLock() {
			continue
		}
		delete(t.sessions, id)
		idle = append(idle, s)
	}
	t.mu.Unlock()
	for _, s := range idle {
		t.wipe(s, ReasonIdle)
		<-s.turn
	}
	return len(idle)
}

// RunReaper checks for idle sessions every interval until ctx ends.
func (t *Table) RunReaper(ctx context.Context, timeout, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			t.ReapIdle(now, timeout)
		}
	}
}

func (t *Table) wipe(s *Session, reason string) {
	close(s.done)
	s.Buf.Wipe()
	t.onWipe(s.ID, reason)
}
