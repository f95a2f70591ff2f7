package api

import "time"

// Limits bound what one request may ask for. Exceeding one is a 4xx that
// names it; nothing is truncated silently.
type Limits struct {
	MaxBodyBytes    int64         // request body
	MaxMessages     int           // messages in one request
	MaxContentBytes int           // decoded bytes of one message's content
	MaxTokens       int           // max_tokens; 0 = the context size
	MaxStop         int           // stop sequences
	MaxStopBytes    int           // bytes of one stop sequence
	MaxSessions     int           // live sessions
	QueueTimeout    time.Duration // wait for a free slot (or a session's previous turn) before 503
}

// DefaultLimits are the service's limits unless flags change them.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:    4 << 20,
		MaxMessages:     256,
		MaxContentBytes: 1 << 20,
		MaxStop:         4,
		MaxStopBytes:    256,
		MaxSessions:     64,
		QueueTimeout:    2 * time.Minute,
	}
}
