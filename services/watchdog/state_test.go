package watchdog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kwyre/kwyre/services/watchdog/scan"
)

func TestWriteState(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for i, s := range []State{
		{Running: true, Scans: 1, LastScan: "2026-11-25T03:00:00Z", Skipped: []string{"gpu: no NVIDIA driver"}},
		{Running: true, Triggered: true, Scans: 2, Findings: []scan.Finding{{Scanner: "tracer", Key: "k", What: "traced"}}},
	} {
		if err := WriteState(path, s); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o444 {
			t.Errorf("write %d: mode %v, want 0444", i, st.Mode().Perm())
		}
		got, err := ReadState(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Scans != s.Scans || got.Triggered != s.Triggered || len(got.Findings) != len(s.Findings) {
			t.Errorf("write %d: read back %+v", i, got)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"running":true`, `"triggered":true`, `"scans":2`, `"skipped":[]`, `"errors":[]`,
		`"confirmed":[]`, `"findings":[{"scanner":"tracer","what":"traced"}]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("state %s lacks %s", b, want)
		}
	}
	if strings.Contains(string(b), `"k"`) {
		t.Errorf("internal key leaked into the state: %s", b)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 1 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := WriteState(filepath.Join(dir, "missing", "state.json"), State{}); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestReadSupervised(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body string
		want       map[string]int
		wantErr    bool
	}{
		{"contract", `{"pids":{"inference":123,"watchdog":124,"console-tty1":125}}`,
			map[string]int{"inference": 123, "watchdog": 124, "console-tty1": 125}, false},
		{"empty", `{"pids":{}}`, map[string]int{}, false},
		{"bad pid", `{"pids":{"inference":0}}`, nil, true},
		{"not json", `pids: 1`, nil, true},
	}
	for _, tc := range tests {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, []byte(tc.body), 0o444); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSupervised(p)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v", tc.name, err)
			continue
		}
		if len(got.PIDs) != len(tc.want) {
			t.Errorf("%s: got %v", tc.name, got.PIDs)
		}
		for k, v := range tc.want {
			if got.PIDs[k] != v {
				t.Errorf("%s: %s = %d, want %d", tc.name, k, got.PIDs[k], v)
			}
		}
	}
	if _, err := ReadSupervised(filepath.Join(dir, "none")); err == nil {
		t.Error("missing file read")
	}
}
