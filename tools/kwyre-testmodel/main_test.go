package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kwyre/kwyre/services/inference/gguf"
)

// The test binary runs main when re-executed with this variable set, so the
// tests drive the real command line without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("KWYRE_TESTMODEL_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KWYRE_TESTMODEL_MAIN=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no output", nil, 2, "usage"},
		{"extra argument", []string{"-o", filepath.Join(dir, "x.gguf"), "extra"}, 2, "usage"},
		{"bad preset", []string{"-o", filepath.Join(dir, "x.gguf"), "-preset", "giant"}, 1, `unknown preset "giant"`},
		{"bad type", []string{"-o", filepath.Join(dir, "x.gguf"), "-type", "q2_k"}, 1, `unknown type "q2_k"`},
		{"missing folder", []string{"-o", filepath.Join(dir, "no", "x.gguf")}, 1, "create model file"},
		{"demo", []string{"-o", filepath.Join(dir, "demo.gguf"), "-preset", "demo"}, 0, ""},
		{"tiny q8_0", []string{"-o", filepath.Join(dir, "tiny.gguf"), "-type", "q8_0", "-seed", "9"}, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := run(t, c.args...)
			if code != c.code || !strings.Contains(out, c.msg) {
				t.Fatalf("exit %d, output %q; want exit %d mentioning %q", code, out, c.code, c.msg)
			}
		})
	}
	for name, ft := range map[string]uint32{"demo.gguf": gguf.FileTypeMostlyF16, "tiny.gguf": gguf.FileTypeQ8_0} {
		info, err := gguf.Check(filepath.Join(dir, name))
		if err != nil || info.FileType != ft {
			t.Errorf("%s: %+v, %v", name, info, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.gguf")); !os.IsNotExist(err) {
		t.Errorf("a failed run left x.gguf behind (%v)", err)
	}
}
