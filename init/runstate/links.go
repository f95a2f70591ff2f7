package runstate

import (
	"sync"
	"time"
)

// LinkEvent is one entry of links.json: a link init forced down.
type LinkEvent struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// LinkLog keeps links.json up to date.
type LinkLog struct {
	mu     sync.Mutex
	path   string
	events []LinkEvent
}

// NewLinkLog writes an empty list to path and returns the log.
func NewLinkLog(path string) (*LinkLog, error) {
	l := &LinkLog{path: path, events: []LinkEvent{}}
	if err := WriteJSON(path, l.events); err != nil {
		return nil, err
	}
	return l, nil
}

// Add appends an event and rewrites the file. The list is capped so that a
// link flapping forever cannot fill the tmpfs: past the cap the oldest
// entries go.
func (l *LinkLog) Add(e LinkEvent) error {
	const max = 1000
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	if len(l.events) > max {
		l.events = append(l.events[:0:0], l.events[len(l.events)-max:]...)
	}
	return WriteJSON(l.path, l.events)
}
