package shutdown

import (
	"syscall"
	"testing"
	"time"
)

func TestNotifySignals(t *testing.T) {
	trig := make(chan string, 1)
	NotifySignals(trig)
	tests := []struct {
		sig  syscall.Signal
		want string
	}{
		{syscall.SIGTERM, "signal terminated"},
		{syscall.SIGINT, "Ctrl-Alt-Del (SIGINT)"},
		{syscall.SIGPWR, "signal power failure"},
	}
	for _, tt := range tests {
		if err := syscall.Kill(syscall.Getpid(), tt.sig); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-trig:
			if got != tt.want {
				t.Errorf("%v: got %q, want %q", tt.sig, got, tt.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v: no reason queued", tt.sig)
		}
	}
	// A full queue does not block the signal goroutine.
	trig <- "first"
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	if got := <-trig; got != "first" {
		t.Errorf("queue holds %q", got)
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	select {
	case got := <-trig:
		if got != "Ctrl-Alt-Del (SIGINT)" {
			t.Errorf("after a full queue: %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("signal goroutine stuck after a full queue")
	}
}
