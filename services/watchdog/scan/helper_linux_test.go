package scan

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the child processes the tests inspect: with
// KWYRE_WD_HELPER set it opens what the mode says, prints "ready ..." and waits
// for stdin to close.
func TestMain(m *testing.M) {
	if mode := os.Getenv("KWYRE_WD_HELPER"); mode != "" {
		if err := helper(mode); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helper(mode string) error {
	in := bufio.NewReader(os.Stdin)
	var keep []any
	switch mode {
	case "packet":
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		keep = append(keep, fd)
		fmt.Println("ready")
	case "raw":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		keep = append(keep, fd)
		fmt.Println("ready")
	case "listen":
		// Waits for a line of addresses (the parent configures the netns
		// first), listens on each, prints the bound addresses.
		line, err := in.ReadString('\n')
		if err != nil {
			return err
		}
		var bound []string
		for _, a := range strings.Fields(line) {
			network := "tcp"
			if n, rest, ok := strings.Cut(a, "/"); ok {
				network, a = n, rest
			}
			if strings.HasPrefix(network, "udp") {
				c, err := net.ListenPacket(network, a)
				if err != nil {
					return err
				}
				keep = append(keep, c)
				bound = append(bound, c.LocalAddr().String())
				continue
			}
			l, err := net.Listen(network, a)
			if err != nil {
				return err
			}
			keep = append(keep, l)
			bound = append(bound, l.Addr().String())
		}
		fmt.Println("ready", strings.Join(bound, " "))
	case "dial":
		line, err := in.ReadString('\n')
		if err != nil {
			return err
		}
		c, err := net.Dial("tcp", strings.TrimSpace(line))
		if err != nil {
			return err
		}
		keep = append(keep, c)
		fmt.Println("ready", c.LocalAddr())
	case "spawn":
		// A supervised-looking parent: one child from its own executable and
		// one from another.
		self := exec.Command("/proc/self/exe")
		self.Env = append(os.Environ(), "KWYRE_WD_HELPER=wait")
		other := exec.Command("sleep", "300")
		for _, c := range []*exec.Cmd{self, other} {
			c.Stdin, _ = os.Open(os.DevNull)
			if err := c.Start(); err != nil {
				return err
			}
			defer c.Process.Kill()
		}
		fmt.Println("ready", self.Process.Pid, other.Process.Pid)
	case "wait":
		time.Sleep(300 * time.Second)
	default:
		return fmt.Errorf("unknown helper mode %q", mode)
	}
	io.Copy(io.Discard, in) // until the parent closes stdin
	_ = keep
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// child is a running helper.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startHelper starts the test binary in mode; cloneflags may put it in new
// namespaces.
func startHelper(t *testing.T, mode string, cloneflags uintptr) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "KWYRE_WD_HELPER="+mode)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cloneflags, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s: %v", mode, err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
}

// ready sends line (if any) and waits for the helper's "ready" answer,
// returning the words after it.
func (c *child) ready(t *testing.T, line string) []string {
	t.Helper()
	if line != "" {
		if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper pid %d: %v", c.cmd.Process.Pid, err)
	}
	f := strings.Fields(got)
	if len(f) == 0 || f[0] != "ready" {
		t.Fatalf("helper pid %d said %q", c.cmd.Process.Pid, got)
	}
	return f[1:]
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces, links and raw sockets")
	}
}

// newEnv snapshots /proc. Processes whose network namespace even the test
// (root) may not read are left out: on a development machine that is the
// sandbox's own pid 1, outside this user namespace; the scanners rightly call
// them a blind spot, which is not what these tests are about.
func newEnv(t *testing.T) *Env {
	t.Helper()
	env, err := NewEnv("/proc")
	if err != nil {
		t.Fatal(err)
	}
	kept := env.Procs[:0]
	for _, p := range env.Procs {
		if _, err := nsInode(fmt.Sprintf("/proc/%d/ns/net", p.PID)); err != nil && !p.Kernel && !gone(err) {
			t.Logf("leaving out pid %d (%s): %v", p.PID, p.Comm, err)
			delete(env.byPID, p.PID)
			continue
		}
		kept = append(kept, p)
	}
	env.Procs = kept
	return env
}

// findings returns the findings whose What contains every one of subs.
func matching(fs []Finding, subs ...string) []Finding {
	var out []Finding
next:
	for _, f := range fs {
		for _, s := range subs {
			if !strings.Contains(f.What, s) {
				continue next
			}
		}
		out = append(out, f)
	}
	return out
}
