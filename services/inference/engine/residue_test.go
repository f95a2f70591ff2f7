package engine

import (
	"context"
	"testing"

	"github.com/kwyre/kwyre/services/inference/scrub/scrubtest"
)

// TestNoPlaintextResidue runs a conversation through the engine, wipes
// everything the caller owns and the slot, and looks for the user's text
// anywhere in the process's writable memory.
func TestNoPlaintextResidue(t *testing.T) {
	e := load(t, "demo", Config{Slots: 1, ContextSize: 512})
	needle := scrubtest.Canary(t)
	if n := scrubtest.Count(t, needle); n != 1 { // the needle itself
		scrubtest.LogHits(t, needle)
		t.Fatalf("%d copies before the conversation", n)
	}

	// Built in place: a buffer that grew would leave an unwiped copy behind.
	content := make([]byte, 0, 128)
	content = append(content, "Please remember "...)
	content = append(content, needle...)
	content = append(content, " for me, it matters."...)
	msgs := []Message{{Role: "user", Content: content}}
	text, err := e.RenderChat(msgs, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := e.Tokenize(text, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := acquire(t, e, "alice")
	var reply []byte
	if _, err := s.Generate(context.Background(), toks, Sampling{MaxTokens: 64}, func(b []byte) error {
		reply = append(reply, b...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := scrubtest.Count(t, needle); n < 3 {
		t.Fatalf("the scan finds only %d copies while the text is in use", n)
	}
	clear(content)
	clear(text[:cap(text)])
	clear(toks[:cap(toks)])
	clear(reply)
	s.Wipe()
	s.Release()
	if n := scrubtest.Count(t, needle); n != 1 {
		t.Errorf("%d copies of the user's text left after wiping (want only the test's own)", n-1)
		scrubtest.LogHits(t, needle)
	}
}
