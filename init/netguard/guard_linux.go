package netguard

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Forced is a link the guard acted on: one it saw up and set down, or a
// new one it saw appear (and set down, in case).
type Forced struct {
	Name  string
	Index int
	At    time.Time
	WasUp bool  // false: the link appeared down and was kept down
	Err   error // the LinkSetDown failure, if it failed
}

// Watch subscribes to link changes in the namespace ns (netns.None() for
// the caller's own) and, until ctx ends, sets down any link but lo that is
// up, calling report for each; a link it has not seen before (the ones there
// when the subscription starts included) is reported once even if down. If the subscription breaks (a full socket buffer), it
// subscribes again and re-checks every link. Watch returns once the first
// subscription is in place.
func Watch(ctx context.Context, ns netns.NsHandle, report func(Forced)) error {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink handle: %w", err)
	}
	updates, errc, err := subscribe(ctx, ns)
	if err != nil {
		h.Close()
		return err
	}
	go func() {
		defer h.Close()
		seen := make(map[int]bool)
		for {
			for u := range updates {
				check(h, u, seen, report)
			}
			if ctx.Err() != nil {
				return
			}
			// The subscription ended under us: report and subscribe again.
			var why error
			select {
			case why = <-errc:
			default:
			}
			report(Forced{Name: "(link subscription)", At: time.Now(), Err: fmt.Errorf("link subscription ended (%v); subscribing again", why)})
			for {
				updates, errc, err = subscribe(ctx, ns)
				if err == nil {
					break
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	return nil
}

func subscribe(ctx context.Context, ns netns.NsHandle) (chan netlink.LinkUpdate, chan error, error) {
	updates := make(chan netlink.LinkUpdate, 64)
	errc := make(chan error, 1)
	opts := netlink.LinkSubscribeOptions{
		Namespace:    &ns,
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
		ReceiveBufferSize: 1 << 20,
	}
	if err := netlink.LinkSubscribeWithOptions(updates, ctx.Done(), opts); err != nil {
		return nil, nil, fmt.Errorf("subscribe to link changes: %w", err)
	}
	return updates, errc, nil
}

func check(h *netlink.Handle, u netlink.LinkUpdate, seen map[int]bool, report func(Forced)) {
	if u.Link == nil {
		return
	}
	a := u.Link.Attrs()
	if u.Header.Type == unix.RTM_DELLINK {
		delete(seen, a.Index)
		return
	}
	if u.Header.Type != unix.RTM_NEWLINK || isLoopback(a) {
		return
	}
	up := u.IfInfomsg.Flags&unix.IFF_UP != 0
	if !up && seen[a.Index] {
		return
	}
	seen[a.Index] = true
	f := Forced{Name: a.Name, Index: a.Index, At: time.Now(), WasUp: up}
	if err := h.LinkSetDown(u.Link); err != nil {
		f.Err = fmt.Errorf("set %s down: %w", a.Name, err)
	}
	report(f)
}
