package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// cpuBuild names the instruction set this build's llama.cpp CPU kernels
// were compiled for; the Makefile sets it (-X main.cpuBuild=x86-64-v3) on
// the AVX2 build. Empty: the x86-64 baseline.
var cpuBuild string

// v3Suffix names the AVX2 build beside the baseline one.
const v3Suffix = "-x86-64-v3"

// x86-64-v3's instructions as /proc/cpuinfo names them (abm: LZCNT). The
// kernel lists avx only where it saves the AVX state, so that is implied.
var v3Flags = []string{"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "abm"}

// execCPUBuild replaces the baseline build with the x86-64-v3 build lying
// beside it when this CPU has those instructions. ggml compiles its CPU
// kernels for one instruction set at build time, and the baseline's run
// about ten times slower (1B Q4_K_M on 2 cores: 2.2 against 21.8 tokens/s).
// Both files are in the boot manifest; the process keeps its pid, its
// namespace and what init set on it. KWYRE_CPU_BUILD=baseline keeps the
// baseline. It returns only if no exec happened.
func execCPUBuild() {
	if cpuBuild != "" || os.Getenv("KWYRE_CPU_BUILD") == "baseline" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	alt := exe + v3Suffix
	if _, err := os.Stat(alt); err != nil {
		return
	}
	if missing := missingFlags("/proc/cpuinfo", v3Flags); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "kwyre-inference: CPU lacks %s: running the baseline build\n", strings.Join(missing, " "))
		return
	}
	err = syscall.Exec(alt, os.Args, os.Environ())
	fmt.Fprintf(os.Stderr, "kwyre-inference: exec %s: %v; running the baseline build\n", alt, err)
}

// missingFlags returns which of want the first CPU's flags in cpuinfo lack
// (all of them if the file cannot be read).
func missingFlags(cpuinfo string, want []string) []string {
	f, err := os.Open(cpuinfo)
	if err != nil {
		return want
	}
	defer f.Close()
	have := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "flags" {
			for _, fl := range strings.Fields(v) {
				have[fl] = true
			}
			break
		}
	}
	var missing []string
	for _, w := range want {
		if !have[w] {
			missing = append(missing, w)
		}
	}
	return missing
}

// cpuBuildName is what the service logs about the build that runs.
func cpuBuildName() string {
	if cpuBuild == "" {
		return "x86-64 baseline"
	}
	return cpuBuild
}
