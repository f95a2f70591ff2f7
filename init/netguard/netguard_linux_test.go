package netguard

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Keep the main goroutine on the main thread (see NewNamespace).
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("netguard tests need root (they create network namespaces)")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testNS returns a fresh namespace (lo only) and a handle in it.
func testNS(t *testing.T) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	fd, note, err := NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	if note != "" {
		t.Log(note)
	}
	ns := netns.NsHandle(fd)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); ns.Close() })
	return ns, h
}

func addVeth(t *testing.T, h *netlink.Handle, name, peer string, up bool) {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}
	if err := h.LinkAdd(v); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	if up {
		for _, n := range []string{name, peer} {
			l, err := h.LinkByName(n)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.LinkSetUp(l); err != nil {
				t.Fatalf("set %s up: %v", n, err)
			}
		}
	}
}

func isUp(t *testing.T, h *netlink.Handle, name string) bool {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().RawFlags&unix.IFF_UP != 0
}

func TestNewNamespaceHasOnlyLo(t *testing.T) {
	_, h := testNS(t)
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" || !isUp(t, h, "lo") {
		t.Fatalf("links = %v", links)
	}
	addrs, err := h.AddrList(links[0], netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	sort.Strings(got)
	want := []string{"127.0.0.1/8", "::1/128"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lo addresses = %v, want %v", got, want)
	}
	// The namespace is not ours: our own links are not in it.
	var mine, theirs unix.Stat_t
	unix.Stat("/proc/self/ns/net", &mine)
	unix.Stat("/proc/thread-self/ns/net", &theirs)
	if mine.Ino != theirs.Ino {
		t.Error("the calling thread moved namespace")
	}
}

func TestSetupLoopbackIsIdempotent(t *testing.T) {
	_, h := testNS(t)
	for i := 0; i < 2; i++ {
		if _, err := SetupLoopback(h); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	lo, _ := h.LinkByName("lo")
	addrs, _ := h.AddrList(lo, netlink.FAMILY_V4)
	if len(addrs) != 1 || !addrs[0].IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("v4 addresses = %v", addrs)
	}
}

func TestDownOthers(t *testing.T) {
	_, h := testNS(t)
	addVeth(t, h, "veth0", "veth1", true)
	addVeth(t, h, "veth2", "veth3", false)
	downed, err := DownOthers(h)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(downed)
	if fmt.Sprint(downed) != "[veth0 veth1]" {
		t.Errorf("downed = %v, want [veth0 veth1]", downed)
	}
	for _, n := range []string{"veth0", "veth1", "veth2", "veth3"} {
		if isUp(t, h, n) {
			t.Errorf("%s still up", n)
		}
	}
	if !isUp(t, h, "lo") {
		t.Error("lo went down")
	}
}

type reports struct {
	mu  sync.Mutex
	got []Forced
}

func (r *reports) add(f Forced) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, f)
}

// names counts the forced-down (was up) reports per link.
func (r *reports) names() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int)
	for _, f := range r.got {
		if f.Err == nil && f.WasUp {
			m[f.Name]++
		}
	}
	return m
}

// appeared counts the reports of links seen down.
func (r *reports) appeared() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int)
	for _, f := range r.got {
		if f.Err == nil && !f.WasUp {
			m[f.Name]++
		}
	}
	return m
}

func waitDown(t *testing.T, h *netlink.Handle, r *reports, name string, times int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for isUp(t, h, name) || r.names()[name] < times {
		if time.Now().After(deadline) {
			t.Fatalf("%s not forced down (up=%v, reports %v)", name, isUp(t, h, name), r.names())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitAppeared(t *testing.T, r *reports, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.appeared()[name] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reported (reports %v)", name, r.appeared())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatchForcesLinksDown(t *testing.T) {
	ns, h := testNS(t)
	// A link already up before the guard starts, and one that is down.
	addVeth(t, h, "early0", "early1", true)
	addVeth(t, h, "quiet0", "quiet1", false)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &reports{}
	if err := Watch(ctx, ns, r.add); err != nil {
		t.Fatal(err)
	}
	waitDown(t, h, r, "early0", 1)
	waitDown(t, h, r, "early1", 1)
	waitAppeared(t, r, "quiet0")
	waitAppeared(t, r, "quiet1")

	tests := []struct {
		name string
		do   func(t *testing.T)
		link string
	}{
		{"new link brought up", func(t *testing.T) { addVeth(t, h, "late0", "late1", true) }, "late0"},
		{"new link left down is reported once", func(t *testing.T) {
			addVeth(t, h, "new0", "new1", false)
			waitAppeared(t, r, "new0")
			time.Sleep(200 * time.Millisecond)
			if n := r.appeared()["new0"]; n != 1 {
				t.Errorf("new0 reported %d times", n)
			}
		}, ""},
		{"existing down link brought up", func(t *testing.T) {
			l, _ := h.LinkByName("early0")
			if err := h.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}, "early0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.link == "" {
				tt.do(t)
				return
			}
			before := r.names()[tt.link]
			tt.do(t)
			waitDown(t, h, r, tt.link, before+1)
		})
	}
	if r.names()["lo"] != 0 || r.appeared()["lo"] != 0 || !isUp(t, h, "lo") {
		t.Error("the guard touched lo")
	}

	// After cancel, the guard stops: a link stays up.
	cancel()
	time.Sleep(200 * time.Millisecond)
	l, _ := h.LinkByName("late0")
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if !isUp(t, h, "late0") {
		t.Error("guard still active after its context ended")
	}
}
