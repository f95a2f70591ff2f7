package scan

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// TCP states as /proc/net/tcp prints them.
const (
	tcpListen = 0x0A
)

// Sockets looks at the sockets of every network namespace (through a task in
// it, /proc/PID/task/TID/net/*, not only /proc/net): any TCP or UDP socket with
// a non-loopback local or remote address, any raw or packet socket, and any
// listener other than the allowed ones (the inference service's).
type Sockets struct {
	// AllowListen holds the listeners that may exist, e.g. 127.0.0.1:8000.
	AllowListen []netip.AddrPort
}

// ParseAllowListen parses a comma-separated list of loopback address:port.
func ParseAllowListen(s string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(f)
		if err != nil {
			return nil, fmt.Errorf("allowed listener %q: %w", f, err)
		}
		if !ap.Addr().Unmap().IsLoopback() {
			return nil, fmt.Errorf("allowed listener %q: not a loopback address", f)
		}
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	return out, nil
}

func (Sockets) Name() string { return "sockets" }

func (s Sockets) Scan(env *Env) ([]Finding, error) {
	var out []Finding
	var errs []error
	if err := env.netnsBlindErr(); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range env.NetNamespaces() {
		f, err := s.scanNS(env, ns)
		out = append(out, f...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// socket is one line of /proc/PID/net/{tcp,udp}{,6}.
type socket struct {
	proto          string
	local, remote  netip.AddrPort
	state          uint64
	inode          uint64
	remoteAssigned bool
}

func (s Sockets) scanNS(env *Env, ns NetNS) ([]Finding, error) {
	pfs, err := procfs.NewFS(ns.Dir)
	if err != nil {
		if gone(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("open %s: %w", ns.Dir, err)
	}
	// One unreadable table must not hide the others: errors are collected.
	var errs []error
	var socks []socket
	readers := []struct {
		proto string
		read  func() ([]socket, error)
	}{
		{"tcp", func() ([]socket, error) { t, err := pfs.NetTCP(); return ipSockets("tcp", t, err) }},
		{"tcp6", func() ([]socket, error) { t, err := pfs.NetTCP6(); return ipSockets("tcp6", t, err) }},
		{"udp", func() ([]socket, error) { u, err := pfs.NetUDP(); return ipSockets("udp", procfs.NetTCP(u), err) }},
		{"udp6", func() ([]socket, error) { u, err := pfs.NetUDP6(); return ipSockets("udp6", procfs.NetTCP(u), err) }},
	}
	for _, r := range readers {
		got, err := r.read()
		if err != nil {
			if !gone(err) { // gone: no IPv6 in this kernel, or the task exited
				errs = append(errs, fmt.Errorf("read %s/net/%s: %w", ns.Dir, r.proto, err))
			}
			continue
		}
		socks = append(socks, got...)
	}

	var out []Finding
	for _, so := range socks {
		if f, bad := s.judge(env, ns, so); bad {
			out = append(out, f)
		}
	}

	for _, proto := range []string{"raw", "raw6"} {
		lines, err := procNetLines(filepath.Join(ns.Dir, "net", proto))
		if err != nil && !gone(err) {
			errs = append(errs, err)
		}
		for _, l := range lines {
			if len(l) < 10 {
				errs = append(errs, fmt.Errorf("parse %s/net/%s: short line %q", ns.Dir, proto, strings.Join(l, " ")))
				continue
			}
			ino, _ := strconv.ParseUint(l[9], 10, 64)
			_, protoHex, _ := strings.Cut(l[1], ":")
			ipProto, _ := strconv.ParseUint(protoHex, 16, 16)
			out = append(out, finding("sockets", fmt.Sprintf("%d %s %d", ns.Inode, proto, ino),
				"%s socket (ip protocol %d) in netns %d held by %s",
				proto, ipProto, ns.Inode, env.Describe(env.SocketOwner(ino))))
		}
	}

	lines, err := procNetLines(filepath.Join(ns.Dir, "net", "packet"))
	if err != nil && !gone(err) {
		errs = append(errs, err)
	}
	for _, l := range lines {
		// sk RefCnt Type Proto Iface R Rmem User Inode
		if len(l) < 9 {
			errs = append(errs, fmt.Errorf("parse %s/net/packet: short line %q", ns.Dir, strings.Join(l, " ")))
			continue
		}
		ino, _ := strconv.ParseUint(l[8], 10, 64)
		out = append(out, finding("sockets", fmt.Sprintf("%d packet %d", ns.Inode, ino),
			"packet socket (ethertype 0x%s, ifindex %s) in netns %d held by %s",
			l[3], l[4], ns.Inode, env.Describe(env.SocketOwner(ino))))
	}
	return out, errors.Join(errs...)
}

// judge says whether one TCP/UDP socket is a finding.
func (s Sockets) judge(env *Env, ns NetNS, so socket) (Finding, bool) {
	key := fmt.Sprintf("%d %s %s %s %d", ns.Inode, so.proto, so.local, so.remote, so.inode)
	owner := func() string { return env.Describe(env.SocketOwner(so.inode)) }
	listener := (strings.HasPrefix(so.proto, "tcp") && so.state == tcpListen) ||
		(strings.HasPrefix(so.proto, "udp") && !so.remoteAssigned)
	switch {
	case !so.local.Addr().IsLoopback():
		kind := "socket"
		if listener {
			kind = "listener"
		}
		return finding("sockets", key, "%s %s on non-loopback %s (remote %s) in netns %d held by %s",
			so.proto, kind, so.local, so.remote, ns.Inode, owner()), true
	case so.remoteAssigned && !so.remote.Addr().IsLoopback():
		return finding("sockets", key, "%s socket %s connected to non-loopback %s in netns %d held by %s",
			so.proto, so.local, so.remote, ns.Inode, owner()), true
	case listener:
		for _, a := range s.AllowListen {
			if a == so.local && strings.HasPrefix(so.proto, "tcp") {
				pid := env.SocketOwner(so.inode)
				if env.InferencePID == 0 || pid == 0 || pid == env.InferencePID {
					return Finding{}, false
				}
				return finding("sockets", key, "%s listener %s in netns %d held by %s, not the inference service",
					so.proto, so.local, ns.Inode, owner()), true
			}
		}
		return finding("sockets", key, "%s listener %s in netns %d held by %s is not allowed",
			so.proto, so.local, ns.Inode, owner()), true
	}
	return Finding{}, false
}

// ipSockets converts procfs's parsed lines. NetUDP shares NetTCP's layout.
func ipSockets(proto string, lines procfs.NetTCP, err error) ([]socket, error) {
	if err != nil {
		return nil, err
	}
	out := make([]socket, 0, len(lines))
	for _, l := range lines {
		so := socket{proto: proto, local: addrPort(l.LocalAddr, l.LocalPort),
			remote: addrPort(l.RemAddr, l.RemPort), state: l.St, inode: l.Inode}
		so.remoteAssigned = !(so.remote.Addr().IsUnspecified() && so.remote.Port() == 0)
		out = append(out, so)
	}
	return out, nil
}

// addrPort converts a parsed address; IPv4-mapped IPv6 addresses
// (::ffff:127.0.0.1) become plain IPv4 so loopback checks see them as such.
func addrPort(ip net.IP, port uint64) netip.AddrPort {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		a = netip.IPv4Unspecified()
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}
