package scan

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestJudgeSocket(t *testing.T) {
	allowed := netip.MustParseAddrPort("127.0.0.1:8000")
	s := Sockets{AllowListen: []netip.AddrPort{allowed}}
	const inference, other = 100, 200
	env := &Env{InferencePID: inference, sockOwners: map[uint64]int{1: inference, 2: other}, byPID: map[int]*Process{}}
	ip := func(s string) net.IP { return net.ParseIP(s) }
	tests := []struct {
		name   string
		proto  string
		local  string
		lport  uint64
		remote string
		rport  uint64
		state  uint64
		inode  uint64
		want   string // "" = not a finding
	}{
		{"allowed listener", "tcp", "127.0.0.1", 8000, "0.0.0.0", 0, tcpListen, 1, ""},
		{"allowed address, other owner", "tcp", "127.0.0.1", 8000, "0.0.0.0", 0, tcpListen, 2, "not the inference service"},
		{"other loopback listener", "tcp", "127.0.0.1", 9000, "0.0.0.0", 0, tcpListen, 1, "is not allowed"},
		{"wildcard listener", "tcp", "0.0.0.0", 8000, "0.0.0.0", 0, tcpListen, 1, "listener on non-loopback"},
		{"v6 wildcard listener", "tcp6", "::", 8000, "::", 0, tcpListen, 1, "listener on non-loopback"},
		{"loopback connection", "tcp", "127.0.0.1", 40000, "127.0.0.1", 8000, 1, 2, ""},
		{"v6 loopback connection", "tcp6", "::1", 40000, "::1", 8000, 1, 2, ""},
		{"mapped loopback connection", "tcp6", "::ffff:127.0.0.1", 40000, "::ffff:127.0.0.1", 8000, 1, 2, ""},
		{"mapped allowed listener", "tcp6", "::ffff:127.0.0.1", 8000, "::", 0, tcpListen, 1, ""},
		{"outbound connection", "tcp", "10.0.0.5", 40000, "1.1.1.1", 443, 1, 2, "non-loopback"},
		{"loopback socket, remote outside", "tcp", "127.0.0.1", 40000, "10.1.1.1", 443, 1, 2, "connected to non-loopback"},
		{"time-wait outside", "tcp", "10.0.0.5", 40000, "1.1.1.1", 443, 6, 0, "held by no process"},
		{"udp unconnected loopback", "udp", "127.0.0.1", 53, "0.0.0.0", 0, 7, 2, "udp listener"},
		{"udp connected loopback", "udp", "127.0.0.1", 40000, "127.0.0.53", 53, 1, 2, ""},
		{"udp to outside", "udp", "10.0.0.5", 40000, "8.8.8.8", 53, 1, 2, "non-loopback"},
		{"udp allowed address is still a udp listener", "udp", "127.0.0.1", 8000, "0.0.0.0", 0, 7, 1, "udp listener"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			so := socket{proto: tc.proto, local: addrPort(ip(tc.local), tc.lport),
				remote: addrPort(ip(tc.remote), tc.rport), state: tc.state, inode: tc.inode}
			so.remoteAssigned = !(so.remote.Addr().IsUnspecified() && so.remote.Port() == 0)
			f, bad := s.judge(env, NetNS{Inode: 7}, so)
			if tc.want == "" {
				if bad {
					t.Fatalf("reported: %s", f.What)
				}
				return
			}
			if !bad || !strings.Contains(f.What, tc.want) {
				t.Fatalf("got %v %q, want a finding with %q", bad, f.What, tc.want)
			}
			if f.Key == "" || f.Scanner != "sockets" {
				t.Fatalf("finding without identity: %+v", f)
			}
		})
	}
}

func TestParseAllowListen(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"127.0.0.1:8000", []string{"127.0.0.1:8000"}, false},
		{"127.0.0.1:8000, [::1]:8000", []string{"127.0.0.1:8000", "[::1]:8000"}, false},
		{"[::ffff:127.0.0.1]:8000", []string{"127.0.0.1:8000"}, false},
		{"", nil, false},
		{"0.0.0.0:8000", nil, true},
		{"10.0.0.1:80", nil, true},
		{"localhost:8000", nil, true},
		{"127.0.0.1", nil, true},
	}
	for _, tc := range tests {
		got, err := ParseAllowListen(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		var s []string
		for _, a := range got {
			s = append(s, a.String())
		}
		if strings.Join(s, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%q: got %v, want %v", tc.in, s, tc.want)
		}
	}
}
