package scan

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Links finds any link other than loopback that is administratively up, in
// every network namespace. The watchdog's own namespace is read through
// netlink; another one through netlink from inside it when the watchdog may
// enter it (CAP_SYS_ADMIN), otherwise through its /proc/PID/net files.
type Links struct{}

func (Links) Name() string { return "links" }

// upLink is a link seen up, and how we know.
type upLink struct{ name, how string }

func (Links) Scan(env *Env) ([]Finding, error) {
	self, err := env.SelfNetNS()
	if err != nil {
		return nil, fmt.Errorf("own network namespace: %w", err)
	}
	var out []Finding
	var errs []error
	if err := env.netnsBlindErr(); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range env.NetNamespaces() {
		var up []upLink
		var err error
		if ns.Inode == self {
			up, err = netlinkUp()
		} else {
			up, err = netlinkUpIn(filepath.Join(ns.Dir, "ns", "net"))
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
				up, err = ProcNetUp(filepath.Join(ns.Dir, "net"))
			}
		}
		if err != nil {
			if !gone(err) {
				errs = append(errs, fmt.Errorf("links in netns %d: %w", ns.Inode, err))
			}
			continue
		}
		for _, l := range up {
			out = append(out, finding("links", fmt.Sprintf("%d %s", ns.Inode, l.name),
				"link %s is %s in netns %d (seen through pid %d)", l.name, l.how, ns.Inode, ns.PID))
		}
	}
	return out, errors.Join(errs...)
}

func netlinkUp() ([]upLink, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []upLink
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagUp != 0 && a.Flags&net.FlagLoopback == 0 {
			out = append(out, upLink{a.Name, "up"})
		}
	}
	return out, nil
}

// netlinkUpIn lists up links from inside the namespace nsPath. The thread that
// enters the namespace stays locked and ends with its goroutine, so no other
// goroutine ever runs in the foreign namespace.
func netlinkUpIn(nsPath string) ([]upLink, error) {
	type result struct {
		up  []upLink
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("open %s: %w", nsPath, err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("enter %s: %w", nsPath, err)}
			return
		}
		up, err := netlinkUp()
		ch <- result{up, err}
	}()
	r := <-ch
	return r.up, r.err
}

// ProcNetUp reads which links of a namespace are up from its /proc net
// directory (e.g. /proc/PID/net), for when the watchdog may not enter it. A
// link that is up has joined the all-hosts group 224.0.0.1, which
// net/igmp lists; without igmp every non-loopback link in net/dev counts as up
// (the state cannot be read, so fail closed).
func ProcNetUp(netDir string) ([]upLink, error) {
	lines, err := procNetLines(filepath.Join(netDir, "igmp"))
	if err == nil {
		// Device lines start with the ifindex; group lines follow them.
		var out []upLink
		dev := ""
		for _, raw := range lines {
			if len(raw) >= 3 && raw[2] == ":" && raw[0][0] >= '0' && raw[0][0] <= '9' {
				dev = raw[1]
				continue
			}
			if dev != "" && dev != "lo" && strings.EqualFold(raw[0], "010000E0") {
				out = append(out, upLink{dev, "up"})
				dev = ""
			}
		}
		return out, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	lines, err = procNetLines(filepath.Join(netDir, "dev"))
	if err != nil {
		return nil, err
	}
	var out []upLink
	for _, l := range lines {
		name, _, ok := strings.Cut(l[0], ":")
		if !ok || name == "lo" {
			continue // the second header line
		}
		out = append(out, upLink{name, "present (state unreadable)"})
	}
	return out, nil
}
