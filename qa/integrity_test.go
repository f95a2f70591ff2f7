package qa

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/console/linemode"
)

// quietWindow is how long a stopped boot is watched for any service output.
const quietWindow = 20 * time.Second

// TestTamperedImage builds images whose manifest was made before one byte
// of a file was flipped (the builder's -tamper flag), boots each, and
// checks that init stops at the integrity message naming the file and
// never starts a service.
func TestTamperedImage(t *testing.T) {
	imageDir(t)
	model := demoModel(t)
	for _, tc := range []struct {
		name, path string
	}{
		{"model", "model/model.gguf"},
		{"binary", "bin/kwyre-inference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := buildImage(t, model, "-tamper", tc.path)
			vm := boot(t, filepath.Join(out, "kwyre.img"), BootOptions{})
			changed := regexp.MustCompile(`changed: ` + regexp.QuoteMeta(tc.path))
			if _, err := vm.Expect(changed, bootTimeout); err != nil {
				t.Fatalf("integrity message: %v", err)
			}
			t.Logf("integrity failure reported after %.1fs", vm.Since().Seconds())
			// Let init do whatever it does next (halt or power off), then
			// check nothing that only a started service prints appeared.
			vm.Wait(quietWindow)
			log := vm.Output()
			for _, s := range []string{linemode.Ready, linemode.PromptYou, linemode.PromptKwyre} {
				if strings.Contains(log, s) {
					t.Errorf("a service started on a tampered image: output contains %q", s)
				}
			}
			if other := regexp.MustCompile(`changed: (\S+)`).FindAllStringSubmatch(log, -1); len(other) != 1 {
				t.Errorf("want exactly one changed file reported, got %v", other)
			}
		})
	}
}
