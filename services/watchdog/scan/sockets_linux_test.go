package scan

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestSocketsPacketAndRaw(t *testing.T) {
	requireRoot(t)
	pkt := startHelper(t, "packet", 0)
	pkt.ready(t, "")
	raw := startHelper(t, "raw", 0)
	raw.ready(t, "")

	got, err := Sockets{}.Scan(newEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		pid   int
		words []string
	}{
		{"packet", pkt.cmd.Process.Pid, []string{"packet socket", "ethertype 0x0003"}},
		{"raw", raw.cmd.Process.Pid, []string{"raw socket", "ip protocol 1"}},
	} {
		want := append(c.words, fmt.Sprintf("held by pid %d ", c.pid))
		if len(matching(got, want...)) != 1 {
			t.Errorf("%s socket of pid %d not found; findings: %v", c.name, c.pid, got)
		}
	}
}

// A listener on a veth address inside a namespace the test creates is found
// through that namespace's own /proc/PID/net files; the allowed loopback
// listener is not; other loopback listeners are, as not allowed.
func TestSocketsListenersInNetns(t *testing.T) {
	requireRoot(t)
	c := startHelper(t, "listen", syscall.CLONE_NEWNET)
	pid := c.cmd.Process.Pid
	vethInto(t, pid, "10.199.7.2/24", true)
	bound := c.ready(t, "10.199.7.2:0 127.0.0.1:0 127.0.0.1:0 udp4/127.0.0.1:0 tcp6/[::1]:0 tcp6/[::]:0")
	if len(bound) != 6 {
		t.Fatalf("helper bound %v", bound)
	}
	var allow []netip.AddrPort
	for _, i := range []int{1, 4} {
		allow = append(allow, netip.MustParseAddrPort(bound[i]))
	}
	env := newEnv(t)
	got, err := Sockets{AllowListen: allow}.Scan(env)
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("netns %d", netnsInode(t, pid))
	owner := fmt.Sprintf("held by pid %d ", pid)
	tests := []struct {
		addr  string
		words []string // nil: must not be found
	}{
		{bound[0], []string{"tcp listener on non-loopback"}},
		{bound[1], nil},
		{bound[2], []string{"tcp listener", "is not allowed"}},
		{bound[3], []string{"udp listener", "is not allowed"}},
		{bound[4], nil},
		{bound[5], []string{"tcp6 listener on non-loopback"}},
	}
	for _, tc := range tests {
		addr := netip.MustParseAddrPort(tc.addr).String()
		found := matching(got, addr, ns)
		if tc.words == nil {
			if len(found) != 0 {
				t.Errorf("allowed listener %s reported: %v", addr, found)
			}
			continue
		}
		if len(matching(found, append(tc.words, owner)...)) != 1 {
			t.Errorf("listener %s: want one finding with %q from %s, got %v", addr, tc.words, owner, found)
		}
	}
}

// Loopback connections to the allowed listener, as the console keeps to the
// inference service, are not findings.
func TestSocketsLoopbackConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	env := newEnv(t)
	got, err := Sockets{AllowListen: []netip.AddrPort{netip.MustParseAddrPort(l.Addr().String())}}.Scan(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{l.Addr().String(), c.LocalAddr().String()} {
		if f := matching(got, a); len(f) != 0 {
			t.Errorf("loopback socket %s reported: %v", a, f)
		}
	}
	// The same listener without the allowance is a finding.
	got, err = Sockets{}.Scan(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(matching(got, l.Addr().String(), "is not allowed")) != 1 {
		t.Errorf("listener %s not reported without allowance: %v", l.Addr(), got)
	}
}

// A task whose namespace the watchdog may not read is reported as a blind
// spot, not silently skipped.
func TestSocketsSayWhenBlind(t *testing.T) {
	env := newEnv(t)
	env.Procs = append(env.Procs, &Process{PID: 999999999, Comm: "phantom"})
	env.netnsDone = false
	// A process listed with a task directory that cannot be read as a
	// namespace: point ProcRoot's view of it at nothing readable.
	dir := t.TempDir()
	task := dir + "/999999999/task/999999999/ns"
	if err := os.MkdirAll(task, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(task+"/net", nil, 0o644); err != nil { // a file, not a link
		t.Fatal(err)
	}
	env.ProcRoot = dir
	_, err := Sockets{}.Scan(env)
	if err == nil || !strings.Contains(err.Error(), "cannot read the network namespace of 1 tasks (999999999/999999999)") {
		t.Fatalf("got %v", err)
	}
}
