package scrub

import (
	"testing"
	"time"
)

func TestBytesClearsCapacity(t *testing.T) {
	tests := []struct {
		name string
		buf  []byte
	}{
		{"nil", nil},
		{"full", []byte("conversation text")},
		{"sliced", []byte("conversation text")[:4]},
		{"empty-with-cap", make([]byte, 0, 16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.buf[:cap(tt.buf)] {
				tt.buf[:cap(tt.buf)][i] = 'x'
			}
			Bytes(tt.buf)
			for i, c := range tt.buf[:cap(tt.buf)] {
				if c != 0 {
					t.Fatalf("byte %d = %#x after Bytes", i, c)
				}
			}
		})
	}
}

func TestInt32sClearsCapacity(t *testing.T) {
	toks := []int32{1, 2, 3, 4}[:2]
	Int32s(toks)
	for i, v := range toks[:cap(toks)] {
		if v != 0 {
			t.Fatalf("token %d = %d after Int32s", i, v)
		}
	}
}

func TestDoRunsAndPropagatesPanic(t *testing.T) {
	ran := false
	Do(func() { ran = true })
	if !ran {
		t.Fatal("Do did not run f")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("panic inside Do was swallowed")
		}
	}()
	Do(func() { panic("boom") })
}

func TestClobberFreeIn(t *testing.T) {
	tests := []struct {
		godebug string
		want    bool
	}{
		{"", false},
		{"clobberfree=1", true},
		{"madvdontneed=1,clobberfree=1", true},
		{"clobberfree=1,clobberfree=0", false},
		{"clobberfree=0,clobberfree=1", true},
		{"clobberfree=2", false},
		{"xclobberfree=1", false},
	}
	for _, tt := range tests {
		if got := clobberFreeIn(tt.godebug); got != tt.want {
			t.Errorf("GODEBUG=%q: clobberfree on = %v, want %v", tt.godebug, got, tt.want)
		}
	}
	env := withClobberFree([]string{"A=1", "GODEBUG=madvdontneed=1"})
	if env[1] != "GODEBUG=madvdontneed=1,clobberfree=1" || len(env) != 2 {
		t.Errorf("withClobberFree kept %q", env)
	}
	if env := withClobberFree([]string{"A=1"}); env[len(env)-1] != "GODEBUG=clobberfree=1" {
		t.Errorf("withClobberFree without GODEBUG: %q", env)
	}
}

func TestCollectSoon(t *testing.T) {
	before := Collections()
	CollectSoon()
	deadline := time.Now().Add(10 * time.Second)
	for Collections() == before {
		if time.Now().After(deadline) {
			t.Fatal("CollectSoon: no collection within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}
