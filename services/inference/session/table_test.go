package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type wipeLog struct {
	mu  sync.Mutex
	got []string
}

func (w *wipeLog) record(id, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, id+" "+reason)
}

func (w *wipeLog) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.got...)
}

func TestCreateGetEnd(t *testing.T) {
	var log wipeLog
	tab := NewTable(4, log.record)
	s, err := tab.Create()
	if err != nil {
		t.Fatal(err)
	}
	if !ValidID(s.ID) {
		t.Fatalf("id %q is not valid", s.ID)
	}
	if got, ok := tab.Get(s.ID); !ok || got != s {
		t.Fatal("Get did not find the new session")
	}
	s.Buf.Append("user", []byte("hi"))
	if !tab.End(s.ID, ReasonEnd) {
		t.Fatal("End of a live session = false")
	}
	if !s.Buf.Wiped() {
		t.Fatal("End did not wipe the buffer")
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed by End")
	}
	if tab.End(s.ID, ReasonEnd) {
		t.Fatal("second End = true")
	}
	if _, ok := tab.Get(s.ID); ok {
		t.Fatal("ended session still found")
	}
	if got := log.list(); len(got) != 1 || got[0] != s.ID+" end" {
		t.Fatalf("wipes = %v", got)
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"sess_0123456789abcdef0123456789abcdef", true},
		{"sess_0123456789ABCDEF0123456789abcdef", false},
		{"sess_0123456789abcdef0123456789abcde", false},
		{"sess_0123456789abcdef0123456789abcdef0", false},
		{"xxxx_0123456789abcdef0123456789abcdef", false},
		{"", false},
		{"sess_../../../../etc/passwd0123456789ab", false},
	}
	for _, tt := range tests {
		if got := ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestLimit(t *testing.T) {
	tab := NewTable(2, nil)
	for i := 0; i < 2; i++ {
		if _, err := tab.Create(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tab.Create(); !errors.Is(err, ErrFull) {
		t.Fatalf("third Create: %v, want ErrFull", err)
	}
	if n := tab.WipeAll(ReasonShutdown); n != 2 {
		t.Fatalf("WipeAll = %d", n)
	}
	if tab.Len() != 0 {
		t.Fatal("sessions left after WipeAll")
	}
	if _, err := tab.Create(); err != nil {
		t.Fatalf("Create after WipeAll: %v", err)
	}
}

func TestReapIdle(t *testing.T) {
	var log wipeLog
	tab := NewTable(8, log.record)
	idle, _ := tab.Create()
	busy, _ := tab.Create()
	fresh, _ := tab.Create()
	past := time.Now().Add(-time.Hour)
	idle.lastUsed.Store(past.UnixNano())
	busy.lastUsed.Store(past.UnixNano())
	if err := busy.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := tab.ReapIdle(time.Now(), time.Minute); n != 1 {
		t.Fatalf("reaped %d, want 1", n)
	}
	if _, ok := tab.Get(idle.ID); ok || !idle.Buf.Wiped() {
		t.Fatal("idle session survived")
	}
	if _, ok := tab.Get(busy.ID); !ok {
		t.Fatal("busy session reaped in the middle of a turn")
	}
	if _, ok := tab.Get(fresh.ID); !ok {
		t.Fatal("fresh session reaped")
	}
	busy.Unlock() // touches it
	if n := tab.ReapIdle(time.Now(), time.Minute); n != 0 {
		t.Fatalf("reaped %d after the turn ended, want 0", n)
	}
	if got := log.list(); len(got) != 1 || got[0] != idle.ID+" idle_timeout" {
		t.Fatalf("wipes = %v", got)
	}
}

func TestRunReaper(t *testing.T) {
	tab := NewTable(8, nil)
	s, _ := tab.Create()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tab.RunReaper(ctx, 20*time.Millisecond, 5*time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !s.Buf.Wiped() {
		if time.Now().After(deadline) {
			t.Fatal("reaper did not wipe the idle session")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestLockWaitsAndTimesOut(t *testing.T) {
	tab := NewTable(1, nil)
	s, _ := tab.Create()
	defer tab.WipeAll(ReasonShutdown)
	if err := s.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Lock(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("Lock on a busy session: %v", err)
	}
	got := make(chan error)
	go func() { got <- s.Lock(context.Background()) }()
	s.Unlock()
	if err := <-got; err != nil {
		t.Fatalf("waiting Lock: %v", err)
	}
	s.Unlock()
}
