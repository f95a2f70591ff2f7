package secbuf

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

func collect(t *testing.T, b *Buffer) []Message {
	t.Helper()
	var out []Message
	err := b.Open(func(msgs []Message) error {
		for _, m := range msgs {
			out = append(out, Message{Role: m.Role, Content: bytes.Clone(m.Content)})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msgs []Message
	}{
		{"empty", nil},
		{"one", []Message{{"user", []byte("hello there")}}},
		{"empty-content", []Message{{"assistant", []byte{}}}},
		{"turns", []Message{
			{"system", []byte("be brief")},
			{"user", []byte("first question")},
			{"assistant", []byte("first answer \x00 with a NUL")},
			{"user", []byte("second ✓ question")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New()
			if err != nil {
				t.Fatal(err)
			}
			defer b.Wipe()
			for _, m := range tt.msgs {
				if err := b.Append(m.Role, m.Content); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			if b.Len() != len(tt.msgs) {
				t.Fatalf("Len = %d, want %d", b.Len(), len(tt.msgs))
			}
			got := collect(t, b)
			if len(got) != len(tt.msgs) {
				t.Fatalf("got %d messages, want %d", len(got), len(tt.msgs))
			}
			for i := range got {
				if got[i].Role != tt.msgs[i].Role || !bytes.Equal(got[i].Content, tt.msgs[i].Content) {
					t.Errorf("message %d = %q/%q, want %q/%q", i, got[i].Role, got[i].Content, tt.msgs[i].Role, tt.msgs[i].Content)
				}
			}
		})
	}
}

func TestCiphertextHidesPlaintext(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Wipe()
	secret := []byte("the launch code is 0000")
	if err := b.Append("user", secret); err != nil {
		t.Fatal(err)
	}
	if err := b.Append("user", secret); err != nil {
		t.Fatal(err)
	}
	for i, rec := range b.records {
		if bytes.Contains(rec, secret) || bytes.Contains(rec, secret[4:12]) {
			t.Fatalf("record %d holds plaintext", i)
		}
	}
	if bytes.Equal(b.records[0][24:], b.records[1][24:]) {
		t.Fatal("same message sealed twice gave the same ciphertext (nonce reuse)")
	}
}

func TestOpenScratchIsWiped(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Wipe()
	b.Append("user", []byte("abcdef"))
	var seen []byte
	b.Open(func(msgs []Message) error {
		seen = msgs[0].Content // deliberately kept to look at it afterwards
		return nil
	})
	if !bytes.Equal(seen, make([]byte, len(seen))) {
		t.Fatalf("scratch buffer still holds %q after Open returned", seen)
	}
}

func TestTamperedRecordFails(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(b *Buffer)
	}{
		{"flip-ciphertext", func(b *Buffer) { b.records[0][30] ^= 1 }},
		{"flip-tag", func(b *Buffer) { r := b.records[0]; r[len(r)-1] ^= 1 }},
		{"reorder", func(b *Buffer) { b.records[0], b.records[1] = b.records[1], b.records[0] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New()
			if err != nil {
				t.Fatal(err)
			}
			defer b.Wipe()
			b.Append("user", []byte("one"))
			b.Append("assistant", []byte("two"))
			tt.mutate(b)
			called := false
			err = b.Open(func([]Message) error { called = true; return nil })
			if err == nil || called {
				t.Fatalf("Open of tampered buffer: err=%v called=%v", err, called)
			}
			if bytes.Contains([]byte(err.Error()), []byte("one")) {
				t.Fatal("error names content")
			}
		})
	}
}

func TestWipe(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	b.Append("user", []byte("wipe me please"))
	rec := b.records[0]
	before := bytes.Clone(rec)
	keyMem := b.key.mem
	b.Wipe()
	if bytes.Equal(rec, before) {
		t.Fatal("ciphertext not overwritten")
	}
	if keyMem == nil || b.key != nil {
		t.Fatal("key page not released")
	}
	if !b.Wiped() {
		t.Fatal("Wiped() = false")
	}
	if err := b.Append("user", []byte("x")); !errors.Is(err, ErrWiped) {
		t.Fatalf("Append after Wipe: %v", err)
	}
	if err := b.Open(func([]Message) error { return nil }); !errors.Is(err, ErrWiped) {
		t.Fatalf("Open after Wipe: %v", err)
	}
	b.Wipe() // idempotent
}

func TestKeyPageZeroAndDestroy(t *testing.T) {
	p, err := newKeyPage()
	if err != nil {
		t.Fatal(err)
	}
	copy(p.key(), bytes.Repeat([]byte{0xAA}, KeySize))
	p.mem[len(p.mem)-1] = 0xAA
	p.zero()
	if !bytes.Equal(p.mem, make([]byte, len(p.mem))) {
		t.Fatal("zero left key bytes in the page")
	}
	p.destroy()
	if p.mem != nil {
		t.Fatal("destroy kept the mapping")
	}
	p.destroy() // idempotent
}

func TestUnknownRole(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Wipe()
	if err := b.Append("tool", []byte("x")); err == nil {
		t.Fatal("unknown role accepted")
	}
}

func TestConcurrentAppendOpenWipe(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if err := b.Append("user", []byte("concurrent")); err != nil && !errors.Is(err, ErrWiped) {
					t.Error(err)
				}
				if err := b.Open(func([]Message) error { return nil }); err != nil && !errors.Is(err, ErrWiped) {
					t.Error(err)
				}
			}
		}()
	}
	b.Wipe()
	wg.Wait()
}
