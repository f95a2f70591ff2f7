package runstate

import (
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

func TestWriteJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.json")
	if err := WriteJSON(p, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := ReadJSON(p, &got); err != nil || got["a"] != 1 {
		t.Fatalf("ReadJSON = %v, %v", got, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("mode %v", fi.Mode())
	}
	if err := WriteJSON(filepath.Join(t.TempDir(), "nope", "x.json"), 1); err == nil {
		t.Error("write into a missing folder succeeded")
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestLinkLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), Links)
	l, err := NewLinkLog(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []LinkEvent
	if err := ReadJSON(p, &got); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty log = %v, %v", got, err)
	}
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	l.Add(LinkEvent{Name: "eth0", At: at})
	l.Add(LinkEvent{Name: "wlan0", At: at})
	if err := ReadJSON(p, &got); err != nil || len(got) != 2 || got[1].Name != "wlan0" || !got[0].At.Equal(at) {
		t.Fatalf("log = %v, %v", got, err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != `[{"name":"eth0","at":"2026-11-01T12:00:00Z"},{"name":"wlan0","at":"2026-11-01T12:00:00Z"}]`+"\n" {
		t.Errorf("file = %s", b)
	}
}

func TestWriteAPIKeys(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := t.TempDir()
	owners := []KeyOwner{
		{Dir: filepath.Join(dir, "inference"), UID: 801, GID: 801},
		{Dir: filepath.Join(dir, "console"), UID: 803, GID: 803},
	}
	if err := WriteAPIKeys(owners); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range owners {
		p := filepath.Join(o.Dir, "api-key")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(b) {
			t.Errorf("%s = %q", p, b)
		}
		keys = append(keys, string(b))
		for _, x := range []struct {
			path string
			mode os.FileMode
		}{{p, 0o400}, {o.Dir, 0o500}} {
			fi, err := os.Stat(x.path)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode().Perm() != x.mode || st.Uid != o.UID || st.Gid != o.GID {
				t.Errorf("%s: mode %v uid %d gid %d", x.path, fi.Mode().Perm(), st.Uid, st.Gid)
			}
		}
	}
	if keys[0] != keys[1] {
		t.Error("owners got different keys")
	}
	// A second boot gets a new key.
	if err := WriteAPIKeys(owners); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(owners[0].Dir, "api-key"))
	if string(b) == keys[0] {
		t.Error("key did not change")
	}
}
