//go:build linux

package wgbatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/batchconn/batchconn/internal/testnet"
)

// TestStickySourceOnLoopback: the udp4 socket is bound to 0.0.0.0 and the
// whole of 127.0.0.0/8 is local, so a peer can write to 127.0.0.2. The
// Endpoint of its packet has 127.0.0.2 as sticky source, and the reply
// leaves from it; after ClearSrc the reply leaves from the address the
// kernel picks for 127.0.0.1, 127.0.0.1 itself. The peer's next packet
// gets a sticky Endpoint again.
func TestStickySourceOnLoopback(t *testing.T) {
	for _, gso := range []bool{true, false} {
		t.Run(fmt.Sprintf("GSO %v", gso), func(t *testing.T) {
			b, fns, port := openBind(t, WithGSO(gso))
			fn := fnFor(t, fns, "v4")
			p := newPeer(t, netip.MustParseAddr("127.0.0.1"))
			lo, err := net.InterfaceByName("lo")
			if err != nil {
				t.Skipf("no lo interface: %v", err)
			}
			sticky := netip.MustParseAddr("127.0.0.2")
			r := newReceiver()
			// A peer's packet to 127.0.0.2 makes a sticky Endpoint for it.
			arrive := func() conn.Endpoint {
				t.Helper()
				p.send(t, netip.AddrPortFrom(sticky, port), packets(1, 100))
				_, eps := r.read(t, fn, 1)
				return eps[0]
			}
			ep := arrive()
			if ep.SrcIP() != sticky || ep.SrcToString() != "127.0.0.2" {
				t.Fatalf("SrcIP %v, SrcToString %q; want %v", ep.SrcIP(), ep.SrcToString(), sticky)
			}
			if got := ep.(*Endpoint).SrcIfidx(); got != int32(lo.Index) {
				t.Errorf("SrcIfidx %d, want lo's %d", got, lo.Index)
			}
			replyFrom := func(ep conn.Endpoint, want netip.Addr, what string) {
				t.Helper()
				pkts := packets(8, 600) // one GSO run where GSO is on
				if err := b.Send(pkts, ep); err != nil {
					t.Fatalf("%s: Send: %v", what, err)
				}
				got, srcs := p.recv(t, len(pkts))
				samePackets(t, got, pkts)
				for i, src := range srcs {
					if src != netip.AddrPortFrom(want, port) {
						t.Fatalf("%s: packet %d came from %v, want %v", what, i, src, netip.AddrPortFrom(want, port))
					}
				}
			}
			replyFrom(ep, sticky, "sticky source")

			ep.ClearSrc()
			if ep.SrcIP().IsValid() || ep.SrcToString() != "" || ep.(*Endpoint).SrcIfidx() != 0 {
				t.Errorf("after ClearSrc: SrcIP %v, SrcToString %q, SrcIfidx %d; want none", ep.SrcIP(), ep.SrcToString(), ep.(*Endpoint).SrcIfidx())
			}
			if ep.DstToString() != p.addr.String() {
				t.Errorf("ClearSrc changed the destination to %s", ep.DstToString())
			}
			replyFrom(ep, netip.MustParseAddr("127.0.0.1"), "after ClearSrc")

			again := arrive()
			if again == ep || again.SrcIP() != sticky {
				t.Errorf("the next packet's Endpoint: the cleared one %v, source %v; want a new one from %v", again == ep, again.SrcIP(), sticky)
			}
			replyFrom(again, sticky, "the next packet's Endpoint")
		})
	}
}

// TestStaleSource sends to Endpoints whose sticky source the kernel
// refuses: an address the host does not have (EINVAL from the route lookup
// for IPv4, from IPV6_PKTINFO's check for IPv6) and an interface index no
// interface has (ENODEV). The Bind clears the source and sends from the
// address the kernel picks, so the packets arrive, in order, once each;
// the Endpoint has no source afterwards. With GSO the refused run is first
// resent plain by batchconn, which fails the same way, before the Bind
// retries.
func TestStaleSource(t *testing.T) {
	for _, family := range []string{"v4", "v6"} {
		for _, gso := range []bool{true, false} {
			ip := netip.MustParseAddr("127.0.0.1")
			notHere := netip.MustParseAddr("192.0.2.1") // TEST-NET-1
			if family == "v6" {
				ip, notHere = netip.IPv6Loopback(), netip.MustParseAddr("2001:db8::1")
			}
			for _, tc := range []struct {
				name    string
				src     netip.Addr
				ifindex uint32
				errnos  []syscall.Errno
			}{
				// IPv4's route lookup says ENETUNREACH on Linux 6.18, EINVAL
				// before; IPV6_PKTINFO's address check says EINVAL.
				{"an address not on the host", notHere, 0, []syscall.Errno{syscall.EINVAL, syscall.ENETUNREACH}},
				{"an interface that is gone", ip, 1<<31 - 1, []syscall.Errno{syscall.ENODEV}},
			} {
				t.Run(fmt.Sprintf("%s/GSO %v/%s", family, gso, tc.name), func(t *testing.T) {
					loopback(t, family)
					b, fns, port := openBind(t, WithGSO(gso))
					fnFor(t, fns, family)
					p := newPeer(t, ip)
					ep := newEndpoint(p.addr, tc.src, tc.ifindex)
					if ep.SrcIP() != tc.src {
						t.Fatalf("newEndpoint has source %v, want %v", ep.SrcIP(), tc.src)
					}
					// What the kernel says to this source, sent as the Bind would.
					so := b.socketFor(family)
					if _, err := so.writeAll([][]byte{{1}}, ep.srcControl(), p.addr); !slices.ContainsFunc(tc.errnos, func(e syscall.Errno) bool { return errors.Is(err, e) }) {
						t.Fatalf("the kernel answers a send from this source with %v; the test expects one of %v", err, tc.errnos)
					}
					if err := b.Send(packets(6, 500), ep); err != nil {
						t.Fatalf("Send from a stale source: %v", err)
					}
					got, srcs := p.recv(t, 6)
					samePackets(t, got, packets(6, 500))
					for i, src := range srcs {
						if src != netip.AddrPortFrom(ip, port) {
							t.Errorf("packet %d came from %v, want %v", i, src, netip.AddrPortFrom(ip, port))
						}
					}
					if ep.SrcIP().IsValid() {
						t.Errorf("after the refused source the Endpoint still has source %v", ep.SrcIP())
					}
					// Later Sends go straight out, GSO'd where it is on.
					before := so.c.Stats()
					if err := b.Send(packets(6, 500), ep); err != nil {
						t.Fatal(err)
					}
					p.recv(t, 6)
					after := so.c.Stats()
					if after.Syscalls-before.Syscalls != 1 {
						t.Errorf("the next Send took %d system calls, want 1", after.Syscalls-before.Syscalls)
					}
					if gso && so.c.GSOEnabled() && after.GSOBatches == before.GSOBatches {
						t.Error("the next Send was not GSO'd")
					}
				})
			}
		}
	}
}

// TestStickySourceRemovedAddress runs the Bind in host A of a veth pair,
// whose veth gets a second address, which a peer on B writes to: replies
// leave from that address, for both families. Once the address is removed,
// a Send through the same Endpoint still arrives, from A's other address,
// the only one left, and the Endpoint has lost its source. A Send from a
// good source to a destination with no route at all fails with the
// kernel's ENETUNREACH, from the sticky source and without it, and keeps
// the source: it was not the trouble.
func TestStickySourceRemovedAddress(t *testing.T) {
	pair := testnet.NewPair(t, testnet.LinkConfig{})
	a := pair.A
	var b *Bind
	var fns []conn.ReceiveFunc
	var port uint16
	if err := a.Run(func() (err error) {
		b = NewBind()
		fns, port, err = b.Open(0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, family := range []string{"v4", "v6"} {
		t.Run(family, func(t *testing.T) {
			fn := fnFor(t, fns, family)
			network, main, prefix, nowhere := "udp4", a.Addr4, "/24", "203.0.113.5:9" // TEST-NET-3
			if family == "v6" {
				network, main, prefix, nowhere = "udp6", a.Addr6, "/64", "[3fff::5]:9" // RFC 9637
			}
			second := main.Next().Next() // .3, ::3: B is .2, ::2
			args := []string{"ip", "addr", "add", second.String() + prefix, "dev", a.Link}
			if family == "v6" {
				args = append(args, "nodad")
			}
			a.Exec(t, args...)
			p := peerOn(t, pair.B.ListenUDP(t, network, 0))
			p.send(t, netip.AddrPortFrom(second, port), packets(1, 100))
			_, eps := newReceiver().read(t, fn, 1)
			ep := eps[0]
			if ep.SrcIP() != second {
				t.Fatalf("Endpoint source %v, want %v", ep.SrcIP(), second)
			}
			reply := func(want netip.Addr, what string) {
				t.Helper()
				if err := b.Send(packets(4, 300), ep); err != nil {
					t.Fatalf("%s: Send: %v", what, err)
				}
				_, srcs := p.recv(t, 4)
				for i, src := range srcs {
					if src.Addr() != want {
						t.Fatalf("%s: packet %d came from %v, want %v", what, i, src, want)
					}
				}
			}
			reply(second, "sticky source")
			a.Exec(t, "ip", "addr", "del", second.String()+prefix, "dev", a.Link)
			reply(main, "the source address removed")
			if ep.SrcIP().IsValid() {
				t.Errorf("the Endpoint kept its removed source %v", ep.SrcIP())
			}

			// A good source to a destination A has no route to.
			p.send(t, netip.AddrPortFrom(main, port), packets(1, 100))
			_, eps = newReceiver().read(t, fn, 1)
			good := eps[0].(*Endpoint)
			// No interface: with one, IPv4 takes a destination without a route
			// to be on that link, and sends it there.
			far := newEndpoint(netip.MustParseAddrPort(nowhere), good.src, 0)
			if err := b.Send(packets(2, 100), far); !errors.Is(err, syscall.ENETUNREACH) {
				t.Errorf("Send to a destination with no route: %v, want ENETUNREACH", err)
			}
			if far.SrcIP() != main {
				t.Errorf("after an unreachable destination the Endpoint has source %v, want %v kept", far.SrcIP(), main)
			}
		})
	}
}
