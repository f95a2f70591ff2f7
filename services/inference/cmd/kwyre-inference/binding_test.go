package main

import (
	"runtime/debug"
	"testing"
)

func TestDescribeBinding(t *testing.T) {
	other := &debug.Module{Path: "golang.org/x/sys", Version: "v0.1.0"}
	for _, c := range []struct {
		name string
		deps []*debug.Module
		want string
	}{
		{"released", []*debug.Module{other, {Path: bindingModule, Version: "v0.24.0"}}, "github.com/ollama/ollama v0.24.0"},
		{"patched", []*debug.Module{{Path: bindingModule, Version: "v0.24.0", Replace: &debug.Module{Path: "./build/binding/module", Version: "(devel)"}}},
			"github.com/ollama/ollama v0.24.0 patched (./build/binding/module)"},
		{"absent", []*debug.Module{other}, "absent"},
	} {
		if got := describeBinding(c.deps); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
