// Package qa boots the appliance image in QEMU and checks it end to end:
// the serial chat, power-off through the monitor, tampered images, a NIC
// the guest must keep down, reproducible builds, and boot-to-ready time.
//
// The tests run only when KWYRE_QA_IMAGE names the build folder holding
// kwyre.img (`make test-vm` sets it).
package qa

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// VM is one QEMU guest booted from a disk image through qa/run-qemu.sh,
// with its serial console on pipes and a QMP socket.
type VM struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	qmp   string
	start time.Time

	mu     sync.Mutex
	cond   *sync.Cond
	out    []byte // everything the serial console printed, \r removed
	cursor int    // Expect searches from here
	exited bool
	err    error // QEMU's exit status once exited
	log    io.Writer
	failOn *regexp.Regexp
}

// BootOptions change how the guest starts.
type BootOptions struct {
	Args   []string  // extra QEMU arguments (e.g. a user-mode NIC)
	Env    []string  // run-qemu.sh settings (e.g. KWYRE_DISK=usb)
	MemMiB int       // 0 = run-qemu.sh's default
	Log    io.Writer // serial output is copied here as it arrives (nil: nowhere)
	// FailOn ends every Expect early when it matches output after the
	// cursor that the awaited pattern did not match first (nil: DefaultFailOn).
	FailOn *regexp.Regexp
}

// DefaultFailOn matches what a guest prints when it will never get further.
var DefaultFailOn = regexp.MustCompile(`Kernel panic|the system is halted`)

// Boot starts QEMU on image. The caller must Kill the VM when done.
func Boot(image string, o BootOptions) (*VM, error) {
	script, err := filepath.Abs("run-qemu.sh")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kwyre-qa-")
	if err != nil {
		return nil, err
	}
	vm := &VM{qmp: filepath.Join(dir, "qmp.sock"), log: o.Log, failOn: o.FailOn}
	if vm.failOn == nil {
		vm.failOn = DefaultFailOn
	}
	vm.cond = sync.NewCond(&vm.mu)
	args := append([]string{image, "-qmp", "unix:" + vm.qmp + ",server=on,wait=off"}, o.Args...)
	vm.cmd = exec.Command(script, args...)
	vm.cmd.Env = append(os.Environ(), "KWYRE_SERIAL=stdio", "KWYRE_DISPLAY=none")
	vm.cmd.Env = append(vm.cmd.Env, o.Env...)
	if o.MemMiB > 0 {
		vm.cmd.Env = append(vm.cmd.Env, fmt.Sprintf("KWYRE_MEM=%d", o.MemMiB))
	}
	// Its own process group, so Kill reaches QEMU however it was started.
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if vm.stdin, err = vm.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	vm.cmd.Stdout = pw
	vm.cmd.Stderr = pw
	vm.start = time.Now()
	if err := vm.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start QEMU: %w", err)
	}
	go vm.read(pr)
	go func() {
		err := vm.cmd.Wait()
		pw.Close()
		os.RemoveAll(dir)
		vm.mu.Lock()
		vm.exited, vm.err = true, err
		vm.cond.Broadcast()
		vm.mu.Unlock()
	}()
	return vm, nil
}

func (vm *VM) read(r io.Reader) {
	br := bufio.NewReader(r)
	buf := make([]byte, 4096)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			chunk := bytes.ReplaceAll(buf[:n], []byte("\r"), nil)
			if vm.log != nil {
				vm.log.Write(chunk)
			}
			vm.mu.Lock()
			vm.out = append(vm.out, chunk...)
			vm.cond.Broadcast()
			vm.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// Since is the time since QEMU started.
func (vm *VM) Since() time.Duration { return time.Since(vm.start) }

// Output returns everything the console printed so far.
func (vm *VM) Output() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return string(vm.out)
}

// ErrExited means QEMU ended while a pattern was awaited.
var ErrExited = errors.New("QEMU exited")

// Expect waits until the output after the cursor matches re, moves the
// cursor past the match and returns the submatches.
func (vm *VM) Expect(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		vm.mu.Lock()
		vm.cond.Broadcast()
		vm.mu.Unlock()
	})
	defer timer.Stop()
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for {
		rest := vm.out[vm.cursor:]
		if loc := re.FindSubmatchIndex(rest); loc != nil {
			var subs []string
			for i := 0; i < len(loc); i += 2 {
				if loc[i] < 0 {
					subs = append(subs, "")
					continue
				}
				subs = append(subs, string(rest[loc[i]:loc[i+1]]))
			}
			vm.cursor += loc[1]
			return subs, nil
		}
		if m := vm.failOn.Find(rest); m != nil {
			return nil, fmt.Errorf("waiting for %q: the guest printed %q", re, m)
		}
		if vm.exited {
			return nil, fmt.Errorf("waiting for %q: %w (%v)", re, ErrExited, vm.err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("waiting for %q: no match after %v", re, timeout)
		}
		vm.cond.Wait()
	}
}

// Send types s on the serial console.
func (vm *VM) Send(s string) error {
	_, err := io.WriteString(vm.stdin, s)
	return err
}

// Monitor runs one QMP command and returns its "return" value.
func (vm *VM) Monitor(command string) (json.RawMessage, error) {
	return vm.MonitorArgs(command, nil)
}

// MonitorArgs runs one QMP command with arguments (nil: none), e.g.
// device_del with {"id": "bootdisk"}.
func (vm *VM) MonitorArgs(command string, args map[string]any) (json.RawMessage, error) {
	c, err := net.DialTimeout("unix", vm.qmp, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("QMP: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	dec := json.NewDecoder(c)
	var greeting map[string]json.RawMessage
	if err := dec.Decode(&greeting); err != nil {
		return nil, fmt.Errorf("QMP greeting: %w", err)
	}
	call := func(cmd string, args map[string]any) (json.RawMessage, error) {
		req := map[string]any{"execute": cmd}
		if args != nil {
			req["arguments"] = args
		}
		b, err := json.Marshal(req)
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(append(b, '\n')); err != nil {
			return nil, err
		}
		for {
			var msg struct {
				Return json.RawMessage `json:"return"`
				Error  *struct {
					Desc string `json:"desc"`
				} `json:"error"`
				Event string `json:"event"`
			}
			if err := dec.Decode(&msg); err != nil {
				return nil, fmt.Errorf("QMP %s: %w", cmd, err)
			}
			switch {
			case msg.Event != "":
				continue // asynchronous events are not answers
			case msg.Error != nil:
				return nil, fmt.Errorf("QMP %s: %s", cmd, msg.Error.Desc)
			default:
				return msg.Return, nil
			}
		}
	}
	if _, err := call("qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return call(command, args)
}

// Wait waits up to timeout for QEMU to exit by itself and returns its
// exit error (nil for status 0).
func (vm *VM) Wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		vm.mu.Lock()
		vm.cond.Broadcast()
		vm.mu.Unlock()
	})
	defer timer.Stop()
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for !vm.exited {
		if time.Now().After(deadline) {
			return fmt.Errorf("QEMU still running after %v", timeout)
		}
		vm.cond.Wait()
	}
	return vm.err
}

// Exited reports whether QEMU has ended.
func (vm *VM) Exited() bool {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.exited
}

// Kill ends QEMU (its whole process group) if it still runs, and waits.
func (vm *VM) Kill() {
	if vm.cmd.Process != nil && !vm.Exited() {
		syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL)
	}
	vm.Wait(30 * time.Second)
	vm.stdin.Close()
}

// Tail returns the last n bytes of output, for failure messages.
func (vm *VM) Tail(n int) string {
	s := vm.Output()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return strings.TrimLeft(s, "\n")
}
