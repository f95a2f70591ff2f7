package scan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const bootModules = `virtio_blk 20480 2 - Live 0x0000000000000000
erofs 122880 1 - Live 0x0000000000000000
vfat 24576 0 - Live 0x0000000000000000
`

func TestModules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "modules")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(bootModules)
	m, err := NewModules(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		now     string
		want    []string // module names found
		wantErr bool
	}{
		{"unchanged", bootModules, nil, false},
		{"one unloaded", strings.Join(strings.SplitN(bootModules, "\n", 2)[1:], ""), nil, false},
		{"two loaded", bootModules + "kvm 1200000 0 - Live 0x0\nusb_storage 81920 0 - Loading 0x0\n", []string{"kvm", "usb_storage"}, false},
		{"garbage", bootModules + "broken line\n", nil, true},
		{"empty", "", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			write(tc.now)
			got, err := m.Scan(nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			var names []string
			for _, f := range got {
				names = append(names, f.Key)
				if !strings.Contains(f.What, "kernel module "+f.Key+" was loaded after boot") {
					t.Errorf("finding %q", f.What)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", names, tc.want)
			}
		})
	}
}

func TestModulesWithoutModuleSupport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "modules")
	m, err := NewModules(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Scan(nil)
	if reason, ok := Skipped(err); !ok || reason == "" {
		t.Fatalf("got %v, want skipped", err)
	}
	// Support appearing later (it cannot) would show every module as new.
	if err := os.WriteFile(path, []byte(bootModules), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := m.Scan(nil)
	if err != nil || len(got) != 3 {
		t.Fatalf("got %v, %v", got, err)
	}
}
