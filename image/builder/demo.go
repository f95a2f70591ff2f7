package builder

import (
	"fmt"

	"github.com/kwyre/kwyre/tools/testmodel"
)

// WriteDemoModel generates the demo model (greedy decoding answers every
// prompt with testmodel.DemoReply) at path. The seed is fixed, so the model,
// and with it the image, is the same on every build.
func WriteDemoModel(path string) error {
	if err := testmodel.WriteFile(path, testmodel.Options{Preset: "demo", Seed: 1}); err != nil {
		return fmt.Errorf("demo model: %w", err)
	}
	return nil
}
