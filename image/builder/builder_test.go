package builder

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kwyre/kwyre/image/uki"
	"github.com/kwyre/kwyre/init/config"
	"github.com/kwyre/kwyre/init/manifest"
)

// inputs builds qa/testdata/hello-init as all four programs (the builder
// only needs real ELF files) and a small model, and returns base options.
func inputs(t *testing.T) Options {
	t.Helper()
	kernel := "../../build/debian-kernel/vmlinuz"
	for _, p := range []string{kernel, "../../build/debian-kernel/modules/modules.order", uki.DefaultStub} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("missing %s", p)
		}
	}
	for _, tool := range []string{"go", "objcopy", "mkfs.vfat", "mcopy", "mkfs.erofs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(bin, "kwyre-init"), "../../qa/testdata/hello-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build hello-init: %v\n%s", err, out)
	}
	init, _ := os.ReadFile(filepath.Join(bin, "kwyre-init"))
	for _, p := range Programs[1:] {
		if err := os.WriteFile(filepath.Join(bin, p), init, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	model := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(model, bytes.Repeat([]byte("GGUF weights "), 100000), 0o644); err != nil {
		t.Fatal(err)
	}
	return Options{
		Bin: bin, Kernel: kernel, ModulesDir: "../../build/debian-kernel/modules",
		Model: model, Version: "test",
	}
}

func TestBuild(t *testing.T) {
	base := inputs(t)

	t.Run("the optional x86-64-v3 inference build is staged and in the manifest", func(t *testing.T) {
		o := base
		o.Bin = t.TempDir()
		for _, p := range append(append([]string(nil), Programs...), OptionalPrograms...) {
			data, err := os.ReadFile(filepath.Join(base.Bin, p))
			if os.IsNotExist(err) {
				data, err = os.ReadFile(filepath.Join(base.Bin, "kwyre-init"))
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(o.Bin, p), data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		o.Out, o.Keep = t.TempDir(), true
		if _, err := Build(o); err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(o.Out, "work", "rootfs")
		if _, err := os.Stat(filepath.Join(root, "bin", OptionalPrograms[0])); err != nil {
			t.Fatal(err)
		}
		man, err := os.ReadFile(filepath.Join(root, "etc/kwyre/manifest"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(man), "bin/"+OptionalPrograms[0]) {
			t.Errorf("the manifest does not list bin/%s", OptionalPrograms[0])
		}
	})

	t.Run("partition image verifies and is reproducible", func(t *testing.T) {
		var outs [][]byte
		for range 2 {
			o := base
			o.Out, o.Keep, o.ModelPartition = t.TempDir(), true, PartitionAlways
			res, err := Build(o)
			if err != nil {
				t.Fatal(err)
			}
			if !res.ModelOnPartition {
				t.Fatal("model not on a partition with -model-partition always")
			}
			root := filepath.Join(o.Out, "work", "rootfs")
			cfg, err := config.Load(filepath.Join(root, "etc/kwyre/config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ModelPartition != "kwyre-model" || cfg.ModelFS != "erofs" || len(cfg.Services) != 4 {
				t.Errorf("config: partition %q fs %q, %d services", cfg.ModelPartition, cfg.ModelFS, len(cfg.Services))
			}
			// Debian's storage modules are loaded for the partition, so
			// the boot disk is visible and watched.
			if args := strings.Join(cfg.Service("watchdog").Args, " "); !strings.Contains(args, "-boot-device partname:kwyre-esp -boot-device-wait 15s") {
				t.Errorf("watchdog args %q: boot medium not watched", args)
			}
			for _, m := range cfg.Modules {
				if _, err := os.Stat(filepath.Join(root, m)); err != nil {
					t.Errorf("config lists module %s, not in the image: %v", m, err)
				}
			}
			man, err := os.Open(filepath.Join(root, "etc/kwyre/manifest"))
			if err != nil {
				t.Fatal(err)
			}
			r, err := manifest.Verify(root, man)
			man.Close()
			if err != nil {
				t.Fatalf("the staged tree does not match its manifest: %v %v", err, r.Differences)
			}
			img, err := os.ReadFile(res.Image)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, img)
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Error("two builds from the same inputs differ")
		}
	})

	t.Run("tamper", func(t *testing.T) {
		o := base
		o.Out, o.Keep, o.Tamper = t.TempDir(), true, []string{"bin/kwyre-watchdog"}
		res, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		// Debian's kernel, model in the initramfs: no storage driver is
		// loaded, the watchdog could not see the boot disk.
		if res.WatchesBootMedium {
			t.Error("boot medium watched without storage drivers")
		}
		root := filepath.Join(o.Out, "work", "rootfs")
		man, err := os.Open(filepath.Join(root, "etc/kwyre/manifest"))
		if err != nil {
			t.Fatal(err)
		}
		defer man.Close()
		r, err := manifest.Verify(root, man)
		if !errors.Is(err, manifest.ErrMismatch) || len(r.Differences) != 1 ||
			r.Differences[0].Kind != manifest.Changed || r.Differences[0].Path != "bin/kwyre-watchdog" {
			t.Fatalf("Verify = %v %v, want one change of bin/kwyre-watchdog", err, r.Differences)
		}
		// The source program outside the tree is untouched.
		a, _ := os.ReadFile(filepath.Join(base.Bin, "kwyre-watchdog"))
		b, _ := os.ReadFile(filepath.Join(base.Bin, "kwyre-init"))
		if !bytes.Equal(a, b) {
			t.Error("tampering changed the source program")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, mut := range []func(*Options){
			func(o *Options) { o.ModelPartition = "sometimes" },
			func(o *Options) { o.Model = "/nonexistent.gguf" },
			func(o *Options) { o.ExtraModules = []string{"no_such_module"} },
			func(o *Options) { o.Tamper = []string{"bin/none"} },
			func(o *Options) { o.Bin = t.TempDir() },
		} {
			o := base
			o.Out = t.TempDir()
			mut(&o)
			if _, err := Build(o); err == nil {
				t.Errorf("Build accepted %+v", o)
			}
		}
	})
}

func TestParseTamper(t *testing.T) {
	tests := []struct {
		in      string
		path    string
		off     int64
		wantErr bool
	}{
		{"model/model.gguf", "model/model.gguf", middle, false},
		{"bin/x@12", "bin/x", 12, false},
		{"bin/x@-1", "bin/x", -1, false},
		{"bin/x@0x10", "bin/x", 16, false},
		{"@3", "", 0, true},
		{"bin/x@y", "", 0, true},
	}
	for _, tc := range tests {
		p, off, err := parseTamper(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && (p != tc.path || off != tc.off)) {
			t.Errorf("parseTamper(%q) = %q, %d, %v", tc.in, p, off, err)
		}
	}
}

// TestBuildKwyreKernel: Kwyre's kernel has every driver the image loads
// built in, so the image carries no module, with or without its module
// tree; the release comes from the bzImage.
func TestBuildKwyreKernel(t *testing.T) {
	base := inputs(t)
	kernel, tree, _, release := kwyreKernel(t)
	base.Kernel, base.ModulesDir = kernel, tree
	for _, tc := range []struct {
		name    string
		modules string
	}{{"module tree", tree}, {"no module tree", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.Out, o.Keep, o.ModelPartition, o.ModulesDir = t.TempDir(), true, PartitionAlways, tc.modules
			res, err := Build(o)
			if err != nil {
				t.Fatal(err)
			}
			if res.KernelRelease != release || len(res.Modules) != 0 {
				t.Errorf("kernel %q with modules %v, want %q and none", res.KernelRelease, res.Modules, release)
			}
			cfg, err := config.Load(filepath.Join(o.Out, "work", "rootfs", "etc/kwyre/config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Modules) != 0 {
				t.Errorf("config loads %v", cfg.Modules)
			}
			// The storage drivers are there (built in, as the tree says;
			// without a tree the model partition needs them anyway): the
			// watchdog watches the boot medium.
			args := strings.Join(cfg.Service("watchdog").Args, " ")
			if watched := strings.Contains(args, "-boot-device "+BootDevice); !watched || !res.WatchesBootMedium {
				t.Errorf("watchdog args %q, WatchesBootMedium %v", args, res.WatchesBootMedium)
			}
		})
	}

	stale := t.TempDir()
	for _, f := range []string{"modules.builtin", "modules.order"} {
		b, _ := os.ReadFile(filepath.Join(tree, f))
		os.WriteFile(filepath.Join(stale, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(stale, "version"), []byte("6.1.0-old-kwyre\n"), 0o644)
	for _, tc := range []struct {
		name    string
		mut     func(*Options)
		wantErr string
	}{
		{"tree of another build", func(o *Options) { o.ModulesDir = stale }, "is for kernel 6.1.0-old-kwyre"},
		{"extra module without a tree", func(o *Options) { o.ModulesDir, o.ExtraModules = "", []string{"virtio_net"} }, "no module tree"},
		{"a module the kernel has not", func(o *Options) { o.ExtraModules = []string{"virtio_net"} }, "module virtio_net: not in"},
		{"not a bzImage", func(o *Options) { o.Kernel = filepath.Join(tree, "modules.order") }, "not an x86 bzImage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.Out = t.TempDir()
			tc.mut(&o)
			if _, err := Build(o); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Build: %v, want %q", err, tc.wantErr)
			}
		})
	}
}
