package shutdown

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHasKey(t *testing.T) {
	tests := []struct {
		bitmap string
		code   int
		want   bool
	}{
		// The ACPI power button on QEMU: only KEY_POWER (116 = word 1, bit 52).
		{"10000000000000 0", 116, true},
		{"10000000000000 0", 115, false},
		{"0", 116, false},
		{"", 116, false},
		// A keyboard: many words, KEY_POWER set among others.
		{"1000000000007 ff800000000007ff febeffdfffefffff fffffffffffffffe", 116, true},
		{"1000000000007 ff800000000007ff febeffdfffefffff fffffffffffffffe", 1, true},
		{"1000000000007 ff800000000007ff febeffdfffefffff fffffffffffffffe", 0, false},
		{"zz 0", 116, false},
	}
	for _, tt := range tests {
		if got := HasKey(tt.bitmap, tt.code); got != tt.want {
			t.Errorf("HasKey(%q, %d) = %v, want %v", tt.bitmap, tt.code, got, tt.want)
		}
	}
}

func event(typ, code uint16, value int32) []byte {
	b := make([]byte, inputEventSize)
	binary.NativeEndian.PutUint64(b[0:], 1700000000)
	binary.NativeEndian.PutUint16(b[16:], typ)
	binary.NativeEndian.PutUint16(b[18:], code)
	binary.NativeEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestReadPowerKey(t *testing.T) {
	tests := []struct {
		name    string
		events  [][]byte
		wantErr error
	}{
		{"press", [][]byte{event(evKey, keyPower, 1), event(0, 0, 0)}, nil},
		{"release only", [][]byte{event(evKey, keyPower, 0), event(0, 0, 0)}, io.EOF},
		{"other key", [][]byte{event(evKey, 30, 1)}, io.EOF},
		{"other type", [][]byte{event(0x04, keyPower, 1)}, io.EOF},
		{"after noise", [][]byte{event(evKey, 30, 1), event(0, 0, 0), event(evKey, keyPower, 1)}, nil},
		{"torn event", [][]byte{event(evKey, keyPower, 1)[:10]}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Through a pipe, a few bytes at a time, as a worst case.
			pr, pw := io.Pipe()
			go func() {
				all := bytes.Join(tt.events, nil)
				for len(all) > 0 {
					n := min(7, len(all))
					pw.Write(all[:n])
					all = all[n:]
				}
				pw.Close()
			}()
			if err := ReadPowerKey(pr); !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadPowerKey = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestWatchPowerButton lays out sysfs and /dev/input as the kernel does,
// with a FIFO standing in for the event device node.
func TestWatchPowerButton(t *testing.T) {
	sys, dev := t.TempDir(), t.TempDir()
	mk := func(name, label, keys string) string {
		d := filepath.Join(sys, name, "device", "capabilities")
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "key"), []byte(keys+"\n"), 0o644)
		os.WriteFile(filepath.Join(sys, name, "device", "name"), []byte(label+"\n"), 0o644)
		p := filepath.Join(dev, name)
		if err := mkfifo(p); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		return p
	}
	mouse := mk("event0", "QEMU mouse", "0")
	button := mk("event1", "Power Button", "10000000000000 0")

	pressed := make(chan string, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	WatchPowerButton(ctx, sys, dev, func(d string) { pressed <- d })

	// Opening a FIFO for writing waits for the reader: the watcher opens
	// the button only.
	w, err := openWriteTimeout(button, 5*time.Second)
	if err != nil {
		t.Fatalf("watcher never opened the power button: %v", err)
	}
	if _, err := openWriteTimeout(mouse, 300*time.Millisecond); err == nil {
		t.Error("watcher opened a device without KEY_POWER")
	}
	w.Write(event(evKey, 30, 1))
	select {
	case d := <-pressed:
		t.Fatalf("pressed %q on a non-power key", d)
	case <-time.After(200 * time.Millisecond):
	}
	w.Write(event(evKey, keyPower, 1))
	select {
	case d := <-pressed:
		if d != "Power Button (event1)" {
			t.Errorf("device = %q", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("power button press not seen")
	}
	w.Close()
}

func TestReadReports(t *testing.T) {
	in := strings.Join([]string{
		`{"scanner":"tracer","what":"pid 42 (gdb) traces pid 7"}`,
		``,
		`not json`,
		`{"scanner":"links","what":"eth0 up\u001b[2J"}`,
		`{"what":"no scanner"}`,
	}, "\n") + "\n" + `{"scanner":"last","what":"no newline"}`
	var got []string
	if err := ReadReports(strings.NewReader(in), func(f Finding) { got = append(got, f.String()) }); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"tracer: pid 42 (gdb) traces pid 7",
		"watchdog: unreadable report: not json",
		"links: eth0 up?[2J",
		`watchdog: unreadable report: {"what":"no scanner"}`,
		"last: no newline",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSequence(t *testing.T) {
	var out bytes.Buffer
	var order []string
	s := Sequence{
		Out:        &out,
		Stop:       func(g time.Duration) []string { order = append(order, "stop "+g.String()); return []string{"stubborn"} },
		Grace:      2 * time.Second,
		Wipe:       func() { order = append(order, "wipe") },
		DropCaches: filepath.Join(t.TempDir(), "drop_caches"),
		PowerOff:   func() error { order = append(order, "off"); return errors.New("not PID 1") },
	}
	os.WriteFile(s.DropCaches, nil, 0o644)
	err := s.Run("intrusion: tracer: gdb")
	if err == nil {
		t.Error("Run hid the power-off failure")
	}
	if strings.Join(order, ",") != "stop 2s,wipe,off" {
		t.Errorf("order = %v", order)
	}
	b, _ := os.ReadFile(s.DropCaches)
	if string(b) != "3\n" {
		t.Errorf("drop_caches = %q", b)
	}
	for _, w := range []string{"shutting down: intrusion: tracer: gdb", "killed after 2s: [stubborn]", "power off: not PID 1"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}
