package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateVerify(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/app"), []byte("ELF app"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if rc := run([]string{"generate", root}, &out, &errb); rc != 0 {
		t.Fatalf("generate rc %d: %s", rc, errb.String())
	}
	m := filepath.Join(t.TempDir(), "manifest")
	if err := os.WriteFile(m, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		mutate   func()
		args     []string
		wantRC   int
		wantText string
	}{
		{"match", func() {}, []string{"verify", "-manifest", m, root}, 0, "ok: 1 files"},
		{"changed", func() { os.WriteFile(filepath.Join(root, "bin/app"), []byte("ELF App"), 0o755) },
			[]string{"verify", "-manifest", m, root}, 1, "changed: bin/app"},
		{"extra", func() { os.WriteFile(filepath.Join(root, "bin/sh"), []byte("sh"), 0o755) },
			[]string{"verify", "-manifest", m, root}, 1, "extra executable: bin/sh"},
		{"no manifest flag", func() {}, []string{"verify", root}, 2, ""},
		{"unreadable manifest", func() {}, []string{"verify", "-manifest", m + ".nope", root}, 2, ""},
		{"unknown command", func() {}, []string{"frob"}, 2, ""},
		{"no args", func() {}, nil, 2, ""},
		{"generate missing dir", func() {}, []string{"generate", filepath.Join(root, "nope")}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.mutate()
			var out, errb bytes.Buffer
			rc := run(tt.args, &out, &errb)
			if rc != tt.wantRC {
				t.Fatalf("rc = %d, want %d; stdout %q stderr %q", rc, tt.wantRC, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tt.wantText) {
				t.Fatalf("stdout %q lacks %q", out.String(), tt.wantText)
			}
		})
	}
}
