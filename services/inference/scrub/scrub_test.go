package scrub

import "testing"

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
