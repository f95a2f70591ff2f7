package shutdown

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Input event constants (linux/input-event-codes.h).
const (
	evKey    = 0x01
	keyPower = 116
)

// inputEventSize is sizeof(struct input_event) on 64-bit Linux.
const inputEventSize = 24

// HasKey reports whether a capabilities/key bitmap from sysfs (hex words of
// the kernel's long size, most significant first) has the bit for code.
func HasKey(bitmap string, code int) bool {
	words := strings.Fields(bitmap)
	const bits = 64
	idx := code / bits
	if idx >= len(words) {
		return false
	}
	w, err := strconv.ParseUint(words[len(words)-1-idx], 16, 64)
	if err != nil {
		return false
	}
	return w&(1<<(code%bits)) != 0
}

// ReadPowerKey reads input events from r until KEY_POWER is pressed (then
// it returns nil) or r fails. evdev returns whole events per read; a
// buffered reader makes any other reader (a pipe in tests) safe too.
func ReadPowerKey(r io.Reader) error {
	br := bufio.NewReaderSize(r, inputEventSize*64)
	ev := make([]byte, inputEventSize)
	for {
		if _, err := io.ReadFull(br, ev); err != nil {
			return err
		}
		typ := binary.NativeEndian.Uint16(ev[16:])
		code := binary.NativeEndian.Uint16(ev[18:])
		value := int32(binary.NativeEndian.Uint32(ev[20:]))
		if typ == evKey && code == keyPower && value == 1 {
			return nil
		}
	}
}

// WatchPowerButton watches every input device under sysClass
// ("/sys/class/input") that has KEY_POWER — the ACPI power button QEMU's
// system_powerdown presses, a laptop's button, a keyboard's power key — and
// calls press with the device's name when one is pressed. Devices that
// appear later (modules load, USB keyboards) are picked up by a rescan
// every second. devDir is "/dev/input".
func WatchPowerButton(ctx context.Context, sysClass, devDir string, press func(device string)) {
	var mu sync.Mutex
	watching := make(map[string]bool)
	scan := func() {
		evs, _ := filepath.Glob(filepath.Join(sysClass, "event*"))
		for _, ev := range evs {
			name := filepath.Base(ev)
			mu.Lock()
			seen := watching[name]
			mu.Unlock()
			if seen {
				continue
			}
			b, err := os.ReadFile(filepath.Join(ev, "device/capabilities/key"))
			if err != nil || !HasKey(string(b), keyPower) {
				continue
			}
			f, err := os.Open(filepath.Join(devDir, name))
			if err != nil {
				continue // node not there yet; next scan
			}
			label, _ := os.ReadFile(filepath.Join(ev, "device/name"))
			dev := fmt.Sprintf("%s (%s)", strings.TrimSpace(string(label)), name)
			mu.Lock()
			watching[name] = true
			mu.Unlock()
			go func() {
				defer f.Close()
				err := ReadPowerKey(f)
				if err == nil {
					press(dev)
				}
				mu.Lock()
				delete(watching, name) // gone or pressed: rescan picks it up again
				mu.Unlock()
			}()
		}
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			scan()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
