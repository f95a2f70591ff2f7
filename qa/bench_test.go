package qa

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kwyre/kwyre/tools/testmodel"
)

// benchModel generates a test model of the preset into the benchmark's
// temporary folder and returns its path and size in MiB.
func benchModel(b *testing.B, preset string) (string, float64) {
	b.Helper()
	model := filepath.Join(b.TempDir(), preset+".gguf")
	if err := testmodel.WriteFile(model, testmodel.Options{Preset: preset, Seed: 1}); err != nil {
		b.Fatalf("model: %v", err)
	}
	st, err := os.Stat(model)
	if err != nil {
		b.Fatal(err)
	}
	return model, float64(st.Size()) / (1 << 20)
}

// benchBoot boots img b.N times and reports the mean time from QEMU's
// start to "kwyre: ready".
func benchBoot(b *testing.B, img string) {
	b.Helper()
	b.ResetTimer()
	var total float64
	for i := 0; i < b.N; i++ {
		vm := boot(b, img, BootOptions{})
		if _, err := vm.Expect(readyRE, bootTimeout); err != nil {
			b.Fatalf("boot: %v", err)
		}
		total += vm.Since().Seconds()
		vm.Kill()
	}
	b.StopTimer()
	b.ReportMetric(total/float64(b.N), "s-to-ready")
}

// BenchmarkBootToReady measures QEMU start (firmware included) to the
// console's "kwyre: ready" on ttyS0, for a tiny model and a
// llama3.2-1b-shaped q4_0 model (~0.7 GB, on the read-only partition as
// `auto` puts it), to show how boot grows with model size: init hashes the
// whole model before anything starts, then the service loads it.
//
//	KWYRE_QA_IMAGE=$PWD/build go test -run '^$' -bench BootToReady -benchtime 1x ./qa/
func BenchmarkBootToReady(b *testing.B) {
	imageDir(b)
	for _, preset := range []string{"tiny", "llama3.2-1b"} {
		b.Run(preset, func(b *testing.B) {
			model, mib := benchModel(b, preset)
			out := buildImage(b, model)
			benchBoot(b, filepath.Join(out, "kwyre.img"))
			b.ReportMetric(mib, "model-MiB")
		})
	}
}

// BenchmarkBootToReadyKernel boots the same image (programs, tiny model,
// command line) with Kwyre's kernel and with Debian's, which loads the
// modules Kwyre's has built in: one figure each, in the same run.
//
//	KWYRE_QA_IMAGE=$PWD/build go test -run '^$' -bench BootToReadyKernel -benchtime 1x ./qa/
func BenchmarkBootToReadyKernel(b *testing.B) {
	imageDir(b)
	model, _ := benchModel(b, "tiny")
	for _, flavour := range []string{"kwyre", "debian"} {
		b.Run(flavour, func(b *testing.B) {
			out := buildImage(b, model, "-kernel-flavour", flavour)
			benchBoot(b, filepath.Join(out, "kwyre.img"))
		})
	}
}
