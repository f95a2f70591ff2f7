package sysctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProcSys writes the knobs as files, the way /proc/sys lays them out.
// Tests must not write the real ones: several cannot be turned back.
func fakeProcSys(t *testing.T, keys map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for k, v := range keys {
		p := filepath.Join(root, strings.ReplaceAll(k, ".", "/"))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestApply(t *testing.T) {
	all := map[string]string{}
	for _, s := range Hardening {
		all[s.Key] = "0"
	}
	tests := []struct {
		name        string
		present     map[string]string
		settings    []Setting
		wantErr     string
		wantMissing []string
	}{
		{"all present", all, Hardening, "", nil},
		{"no bpf, no userns", without(all, "kernel.unprivileged_bpf_disabled", "user.max_user_namespaces"), Hardening, "",
			[]string{"kernel.unprivileged_bpf_disabled", "user.max_user_namespaces"}},
		{"no yama is fatal", without(all, "kernel.yama.ptrace_scope"), Hardening, "kernel.yama.ptrace_scope: not in this kernel", []string{"kernel.yama.ptrace_scope"}},
		{"modules lock", map[string]string{"kernel.modules_disabled": "0"}, LockModules, "", nil},
		{"no modules at all", map[string]string{}, LockModules, "", []string{"kernel.modules_disabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeProcSys(t, tt.present)
			out, err := Apply(root, tt.settings)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Apply error = %v, want %q", err, tt.wantErr)
			}
			if got := Missing(out); strings.Join(got, ",") != strings.Join(tt.wantMissing, ",") {
				t.Errorf("missing = %v, want %v", got, tt.wantMissing)
			}
			for _, s := range tt.settings {
				b, err := os.ReadFile(filepath.Join(root, strings.ReplaceAll(s.Key, ".", "/")))
				if err == nil && strings.TrimSpace(string(b)) != s.Value {
					t.Errorf("%s = %q, want %q", s.Key, b, s.Value)
				}
			}
		})
	}
}

func TestApplyReadBackMismatch(t *testing.T) {
	// A knob the kernel clamps reads back differently: that is an error.
	// A folder in place of the file makes the write fail the same way a
	// kernel refusing the value would.
	root := fakeProcSys(t, map[string]string{})
	os.MkdirAll(filepath.Join(root, "kernel", "kptr_restrict"), 0o755)
	_, err := Apply(root, []Setting{{Key: "kernel.kptr_restrict", Value: "2"}})
	if err == nil || !strings.Contains(err.Error(), "set kernel.kptr_restrict=2") {
		t.Fatalf("err = %v", err)
	}
}

func without(m map[string]string, keys ...string) map[string]string {
	out := make(map[string]string)
	for k, v := range m {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}
