package caps

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    uintptr
		wantErr bool
	}{
		{"CAP_SYS_PTRACE", 19, false},
		{"cap_kill", 5, false},
		{"DAC_READ_SEARCH", 2, false},
		{"CAP_CHECKPOINT_RESTORE", 40, false},
		{"CAP_NOPE", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Parse(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestTableIsComplete(t *testing.T) {
	seen := make(map[uintptr]bool)
	for _, n := range Names() {
		v, err := Parse(n)
		if err != nil {
			t.Fatal(err)
		}
		if seen[v] {
			t.Errorf("number %d appears twice", v)
		}
		seen[v] = true
		if Name(v) != n {
			t.Errorf("Name(%d) = %q, want %q", v, Name(v), n)
		}
	}
	for c := uintptr(0); c <= Last; c++ {
		if !seen[c] {
			t.Errorf("capability %d missing", c)
		}
	}
}

func TestMask(t *testing.T) {
	if got := Mask([]uintptr{2, 5, 19}); got != 0x80024 {
		t.Errorf("Mask = %#x, want 0x80024", got)
	}
}
