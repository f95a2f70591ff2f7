// Command kwyre-testmodel writes a generated llama-architecture GGUF model:
// seeded random weights of a preset shape, or the constructed demo model.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/kwyre/kwyre/tools/testmodel"
)

func main() {
	out := flag.String("o", "", "output `file` (required)")
	preset := flag.String("preset", "tiny", "model shape: "+strings.Join(testmodel.Presets(), ", "))
	typ := flag.String("type", "", "weight type: "+strings.Join(testmodel.Types(), ", ")+" (default f16, q4_0 for llama3 shapes)")
	seed := flag.Uint64("seed", 1, "random seed; the same seed writes the same bytes")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: kwyre-testmodel -o FILE [-preset NAME] [-type TYPE] [-seed N]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if err := testmodel.WriteFile(*out, testmodel.Options{Preset: *preset, Type: *typ, Seed: *seed}); err != nil {
		fmt.Fprintf(os.Stderr, "kwyre-testmodel: %v\n", err)
		os.Exit(1)
	}
}
