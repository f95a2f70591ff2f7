package main

import "runtime/debug"

// bindingModule is the cgo binding that carries llama.cpp (package engine).
const bindingModule = "github.com/ollama/ollama"

// bindingBuild names the llama.cpp this program was built with: the pinned
// module as released, or the copy with services/inference/binding-patches
// applied (the Makefile's build), so that a log says which one ran.
func bindingBuild() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information)"
	}
	return describeBinding(bi.Deps)
}

func describeBinding(deps []*debug.Module) string {
	for _, d := range deps {
		if d.Path != bindingModule {
			continue
		}
		if d.Replace != nil {
			return d.Path + " " + d.Version + " patched (" + d.Replace.Path + ")"
		}
		return d.Path + " " + d.Version
	}
	return "absent"
}
