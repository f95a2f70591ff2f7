package kernelconfig

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// baseConfig is a final .config made from the current kwyre.config: the
// newer of the built kernel's and check.sh's scratch one.
func baseConfig(t *testing.T) string {
	t.Helper()
	frag, err := os.Stat("kwyre.config")
	if err != nil {
		t.Fatal(err)
	}
	var newest string
	var newestTime time.Time
	for _, p := range []string{"../build/vmlinuz-kwyre.config", "../build/kernel-check-obj/.config"} {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(newestTime) {
			newest, newestTime = p, st.ModTime()
		}
	}
	if newest == "" || newestTime.Before(frag.ModTime()) {
		t.Skip("no final .config newer than kwyre.config: run make kernel-check")
	}
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCheckScript runs check.sh on edited copies of a real final .config.
func TestCheckScript(t *testing.T) {
	if _, err := os.Stat("../build/kernel-src/linux-source-6.1/Kconfig"); err != nil {
		t.Skip("no kernel source unpacked: run make kernel-check")
	}
	base := baseConfig(t)
	for _, tc := range []struct {
		name     string
		edit     func(string) string
		wantOK   bool
		wantText []string
	}{
		{"unchanged", func(s string) string { return s }, true,
			[]string{"0 do not hold", "0 missed unexpectedly", "kernel-check: ok"}},
		{"an off option absent counts as off",
			func(s string) string { return strings.Replace(s, "# CONFIG_NETDEVICES is not set\n", "", 1) }, true,
			[]string{"kernel-check: ok"}},
		{"network devices on",
			func(s string) string {
				return strings.Replace(s, "# CONFIG_NETDEVICES is not set\n", "CONFIG_NETDEVICES=y\n", 1)
			}, false,
			[]string{"FRAGMENT MISS CONFIG_NETDEVICES: want n, got y"}},
		{"SLUB dropped",
			func(s string) string { return strings.Replace(s, "CONFIG_SLUB=y\n", "", 1) }, false,
			[]string{"FRAGMENT MISS CONFIG_SLUB: want y, got n (absent: a dependency is off)", "MISSED  CONFIG_SLUB"}},
		{"built as a module is not built in",
			func(s string) string { return strings.Replace(s, "CONFIG_VIRTIO_BLK=y\n", "CONFIG_VIRTIO_BLK=m\n", 1) }, false,
			[]string{"FRAGMENT MISS CONFIG_VIRTIO_BLK: want y, got m"}},
		{"a deliberate miss that is met",
			func(s string) string { return s + "CONFIG_GCC_PLUGINS=y\n" }, false,
			[]string{"kspp.list marks CONFIG_GCC_PLUGINS as missed but it is met"}},
		{"string value differs",
			func(s string) string {
				return strings.Replace(s, `CONFIG_LSM="lockdown,yama"`, `CONFIG_LSM="yama"`, 1)
			}, false,
			[]string{`FRAGMENT MISS CONFIG_LSM: want "lockdown,yama", got "yama"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := tc.edit(base)
			if tc.name != "unchanged" && edited == base {
				t.Fatal("the edit changed nothing: the base .config lacks the line")
			}
			path := filepath.Join(t.TempDir(), ".config")
			if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("./check.sh", path).CombinedOutput()
			if ok := err == nil; ok != tc.wantOK {
				t.Errorf("check.sh succeeded = %v, want %v (%v)", ok, tc.wantOK, err)
			}
			for _, want := range tc.wantText {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if t.Failed() {
				t.Logf("check.sh output:\n%s", out)
			}
		})
	}
}
