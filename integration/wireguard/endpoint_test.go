package wgbatch

import (
	"bytes"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
)

// srcIfidxer is the SrcIfidx both Endpoints have beyond conn.Endpoint.
type srcIfidxer interface{ SrcIfidx() int32 }

// sameEndpoint fails the test unless ours reads as std, wireguard-go's
// StdNetEndpoint, does, method by method. The one difference is
// SrcToString without a source: StdNetEndpoint's is the zero netip.Addr's
// "invalid IP", ours "" (nothing in wireguard-go calls it).
func sameEndpoint(t *testing.T, what string, ours, std conn.Endpoint) {
	t.Helper()
	sameDst(t, what, ours, std)
	if ours.SrcIP() != std.SrcIP() {
		t.Errorf("%s: SrcIP %v, StdNetEndpoint's %v", what, ours.SrcIP(), std.SrcIP())
	}
	wantSrc := std.SrcToString()
	if !std.SrcIP().IsValid() {
		wantSrc = ""
	}
	if ours.SrcToString() != wantSrc {
		t.Errorf("%s: SrcToString %q, want %q (StdNetEndpoint's %q)", what, ours.SrcToString(), wantSrc, std.SrcToString())
	}
	if a, b := ours.(srcIfidxer).SrcIfidx(), std.(srcIfidxer).SrcIfidx(); a != b {
		t.Errorf("%s: SrcIfidx %d, StdNetEndpoint's %d", what, a, b)
	}
}

// sameDst fails the test unless ours has std's destination, as each of
// the Dst methods gives it.
func sameDst(t *testing.T, what string, ours, std conn.Endpoint) {
	t.Helper()
	if ours.DstIP() != std.DstIP() {
		t.Errorf("%s: DstIP %v, StdNetEndpoint's %v", what, ours.DstIP(), std.DstIP())
	}
	if ours.DstToString() != std.DstToString() {
		t.Errorf("%s: DstToString %q, StdNetEndpoint's %q", what, ours.DstToString(), std.DstToString())
	}
	if !bytes.Equal(ours.DstToBytes(), std.DstToBytes()) {
		t.Errorf("%s: DstToBytes %x, StdNetEndpoint's %x", what, ours.DstToBytes(), std.DstToBytes())
	}
}

// TestEndpointMatchesStdNetEndpoint sends one packet from one peer to a
// Bind and to a StdNetBind, and compares the two Endpoints the
// ReceiveFuncs make, before and after ClearSrc, for IPv4 and IPv6 (and on
// Linux, with a sticky source other than the peer's address).
//
// The source methods are compared only where StdNetBind's Endpoint has a
// source. With UDP GRO on, which StdNetBind turns on from Linux 5.12, its
// ReceiveFunc drops the control messages of the packets it splits out of
// a coalesced read (splitCoalescedMessages copies N and Addr, not OOB and
// NN), so its Endpoints have no source. Ours are then checked against
// what StdNetEndpoint's sticky_linux.go makes of the same IP_PKTINFO: the
// local address and the interface.
func TestEndpointMatchesStdNetEndpoint(t *testing.T) {
	type target struct{ family, to string }
	targets := []target{{"v4", "127.0.0.1"}, {"v6", "::1"}}
	if runtime.GOOS == "linux" {
		targets = append(targets, target{"v4", "127.0.0.2"}) // all of 127/8 is lo's
	}
	lo, _ := net.InterfaceByName("lo")
	for _, tc := range targets {
		t.Run(tc.family+" to "+tc.to, func(t *testing.T) {
			ip := loopback(t, tc.family)
			_, fns, port := openBind(t)
			fn := fnFor(t, fns, tc.family)
			std := conn.NewStdNetBind()
			stdFns, stdPort, err := std.Open(0)
			if err != nil {
				t.Fatal(err)
			}
			defer std.Close()
			stdFn := fnFor(t, stdFns, tc.family)

			p := newPeer(t, ip)
			to := netip.MustParseAddr(tc.to)
			p.send(t, netip.AddrPortFrom(to, port), packets(1, 64))
			p.send(t, netip.AddrPortFrom(to, stdPort), packets(1, 64))
			_, eps := newReceiver().read(t, fn, 1)
			_, stdEps := newReceiver().read(t, stdFn, 1)
			ours, theirs := eps[0], stdEps[0]
			if theirs.SrcIP().IsValid() {
				sameEndpoint(t, "received", ours, theirs)
			} else {
				sameDst(t, "received", ours, theirs)
				if runtime.GOOS == "linux" && lo != nil {
					if ours.SrcIP() != to || ours.SrcToString() != to.String() || ours.(srcIfidxer).SrcIfidx() != int32(lo.Index) {
						t.Errorf("received: SrcIP %v, SrcToString %q, SrcIfidx %d; want %v, %q, lo's %d",
							ours.SrcIP(), ours.SrcToString(), ours.(srcIfidxer).SrcIfidx(), to, to.String(), lo.Index)
					}
				}
			}
			ours.ClearSrc()
			theirs.ClearSrc()
			sameEndpoint(t, "after ClearSrc", ours, theirs)
		})
	}
}

// TestParseEndpointMatchesStdNetBind compares the Endpoints of the two
// Binds' ParseEndpoint for the same strings. The one difference, an
// IPv4-mapped IPv6 address, which ours takes as the IPv4 address, is
// TestParseEndpoint's.
func TestParseEndpointMatchesStdNetBind(t *testing.T) {
	b, std := NewBind(), conn.NewStdNetBind()
	for _, s := range []string{
		"192.0.2.1:51820", "127.0.0.1:1", "0.0.0.0:0", "255.255.255.255:65535",
		"[2001:db8::1]:51820", "[::1]:1", "[::]:0", "[fe80::1%eth0]:51820", "[fe80::1%7]:1",
		"[2001:db8:0:0:0:0:0:1]:51820", // non-canonical: DstToString gives it back canonical
	} {
		ours, err := b.ParseEndpoint(s)
		if err != nil {
			t.Errorf("ParseEndpoint(%q): %v", s, err)
			continue
		}
		theirs, err := std.ParseEndpoint(s)
		if err != nil {
			t.Fatalf("StdNetBind.ParseEndpoint(%q): %v", s, err)
		}
		sameEndpoint(t, s, ours, theirs)
	}
}

// FuzzParseEndpoint checks ParseEndpoint against StdNetBind's on any
// string: no panic, an error exactly where StdNetBind gives one, and
// otherwise the same destination but for the IPv4-mapped addresses ours
// unmaps.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1:51820", "[2001:db8::1]:51820", "[::ffff:192.0.2.1]:1", "[fe80::1%eth0]:1",
		"", ":", "192.0.2.1", "192.0.2.1:", "192.0.2.1:65536", "example.com:51820",
		"localhost:51820", "[::1]", "::1:51820", "[::1%]:1", "1.2.3.4:+1", "1.2.3.4:0x10",
	} {
		f.Add(s)
	}
	b, std := NewBind(), conn.NewStdNetBind()
	f.Fuzz(func(t *testing.T, s string) {
		ours, err := b.ParseEndpoint(s)
		theirs, stdErr := std.ParseEndpoint(s)
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("ParseEndpoint(%q): error %v, StdNetBind's %v", s, err, stdErr)
		}
		if err != nil {
			if ours != nil {
				t.Fatalf("ParseEndpoint(%q) returned an Endpoint with its error", s)
			}
			return
		}
		want := netip.AddrPortFrom(theirs.DstIP().Unmap(), theirs.(*conn.StdNetEndpoint).Port())
		if got := ours.(*Endpoint).DstAddrPort(); got != want {
			t.Fatalf("ParseEndpoint(%q) = %v, want %v", s, got, want)
		}
		if ours.DstToString() != want.String() || ours.SrcIP().IsValid() {
			t.Fatalf("ParseEndpoint(%q): DstToString %q, source %v; want %q, none", s, ours.DstToString(), ours.SrcIP(), want)
		}
	})
}
