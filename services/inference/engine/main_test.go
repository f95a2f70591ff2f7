package engine

import (
	"fmt"
	"os"
	"testing"
)

var sharedDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "kwyre-engine-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}
