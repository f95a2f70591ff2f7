package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const good = `{
  "modules": ["/lib/modules/virtio_blk.ko", "/lib/modules/erofs.ko"],
  "model_partition": "kwyre-model",
  "model_fs": "erofs",
  "manifest": "/etc/kwyre/manifest",
  "services": [
    {"name": "inference", "path": "/bin/kwyre-inference", "args": ["-model", "/model/model.gguf"],
     "env": ["OLLAMA_LIBRARY_PATH=/lib/ollama"], "uid": 801, "gid": 801, "netns": true, "restart": "backoff"},
    {"name": "watchdog", "path": "/bin/kwyre-watchdog", "uid": 802, "gid": 802,
     "caps": ["CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_KILL"], "restart": "critical"},
    {"name": "console-tty1", "path": "/bin/kwyre-console", "args": ["-mode", "tui"], "uid": 803, "gid": 803,
     "netns": true, "tty": "/dev/tty1", "restart": "backoff"}
  ]
}`

func TestParseGood(t *testing.T) {
	c, err := Parse(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 3 || c.ModelPartition != "kwyre-model" || len(c.Modules) != 2 {
		t.Fatalf("unexpected config: %+v", c)
	}
	w := c.Service("watchdog")
	if w == nil || w.UID != 802 || len(w.Caps) != 3 || w.Restart != RestartCritical || w.NetNS {
		t.Fatalf("watchdog = %+v", w)
	}
	if c.Service("nope") != nil {
		t.Fatal("Service(nope) != nil")
	}
	// Round trip through Write.
	var buf bytes.Buffer
	if err := c.Write(&buf); err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, c2) {
		t.Fatalf("round trip differs:\n%+v\n%+v", c, c2)
	}
}

func TestParseBad(t *testing.T) {
	svc := func(s string) string {
		return `{"manifest":"/etc/kwyre/manifest","services":[` + s + `]}`
	}
	tests := []struct {
		name, in, wantErr string
	}{
		{"not json", `{`, "decode"},
		{"unknown field", `{"manifest":"/m","modles":[]}`, "unknown field"},
		{"trailing", `{"manifest":"/m"} {}`, "trailing"},
		{"no manifest", `{}`, "manifest: empty"},
		{"relative manifest", `{"manifest":"etc/m"}`, "manifest"},
		{"relative module", `{"manifest":"/m","modules":["a.ko"]}`, "modules[0]"},
		{"unclean module", `{"manifest":"/m","modules":["/lib/../a.ko"]}`, "modules[0]"},
		{"bad fs", `{"manifest":"/m","model_partition":"p","model_fs":"ntfs"}`, "model_fs"},
		{"partition without fs", `{"manifest":"/m","model_partition":"p"}`, "model_fs"},
		{"no name", svc(`{"path":"/bin/x","restart":"backoff"}`), "name: empty"},
		{"bad name", svc(`{"name":"a b","path":"/bin/x","restart":"backoff"}`), "only letters"},
		{"relative path", svc(`{"name":"a","path":"bin/x","restart":"backoff"}`), "path"},
		{"bad env", svc(`{"name":"a","path":"/bin/x","env":["NOEQUALS"],"restart":"backoff"}`), "KEY=VALUE"},
		{"env PATH", svc(`{"name":"a","path":"/bin/x","env":["PATH=/tmp"],"restart":"backoff"}`), "PATH"},
		{"bad cap", svc(`{"name":"a","path":"/bin/x","caps":["CAP_FLY"],"restart":"backoff"}`), "unknown capability"},
		{"bad restart", svc(`{"name":"a","path":"/bin/x","restart":"always"}`), "restart"},
		{"no restart", svc(`{"name":"a","path":"/bin/x"}`), "restart"},
		{"relative tty", svc(`{"name":"a","path":"/bin/x","tty":"tty1","restart":"backoff"}`), "tty"},
		{"duplicate", svc(`{"name":"a","path":"/bin/x","restart":"backoff"},{"name":"a","path":"/bin/y","restart":"backoff"}`), "used twice"},
		{"negative uid", svc(`{"name":"a","path":"/bin/x","uid":-1,"restart":"backoff"}`), "decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "open config") {
		t.Fatalf("Load(missing) = %v", err)
	}
	if err := os.WriteFile(p, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Manifest != "/etc/kwyre/manifest" {
		t.Fatalf("Manifest = %q", c.Manifest)
	}
}
