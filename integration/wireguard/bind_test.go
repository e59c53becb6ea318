package wgbatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

func TestOpenGivesBothFamiliesOnePort(t *testing.T) {
	b, fns, port := openBind(t)
	if port == 0 {
		t.Fatal("Open(0) reported port 0")
	}
	var names []string
	for _, fn := range fns {
		names = append(names, fn.PrettyName())
	}
	s := b.open.Load()
	if s.v4 == nil {
		t.Fatalf("no udp4 socket; ReceiveFuncs %v", names)
	}
	want := []string{"v4"}
	if s.v6 != nil {
		want = append(want, "v6")
	}
	if !slices.Equal(names, want) {
		t.Errorf("ReceiveFuncs are named %v, want %v", names, want)
	}
	for _, so := range []*socket{s.v4, s.v6} {
		if so == nil {
			continue
		}
		if got := so.c.LocalAddr().(*net.UDPAddr).Port; got != int(port) {
			t.Errorf("socket %v: port %d, want %d", so.c.LocalAddr(), got, port)
		}
	}
}

func TestOpenOnAGivenPort(t *testing.T) {
	// A port free for both families: one a Bind just had.
	probe := NewBind()
	_, free, err := probe.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	b := NewBind()
	_, got, err := b.Open(free)
	if err != nil {
		t.Fatalf("Open(%d): %v", free, err)
	}
	defer b.Close()
	if got != free {
		t.Errorf("Open(%d) reported port %d", free, got)
	}
	// A port another Bind holds fails with the kernel's EADDRINUSE.
	other := NewBind()
	if _, _, err := other.Open(free); !errors.Is(err, syscall.EADDRINUSE) {
		other.Close()
		t.Errorf("Open of a port in use: got %v, want EADDRINUSE", err)
	}
}

// TestOpenAnOpenBindFails: a second Open fails with conn.ErrBindAlreadyOpen,
// on port 0 or the Bind's own, and leaves the first Open's sockets as they
// were: its ReceiveFuncs and Send keep working.
func TestOpenAnOpenBindFails(t *testing.T) {
	b, fns, port := openBind(t)
	for _, again := range []uint16{0, port} {
		if fns2, p, err := b.Open(again); err != conn.ErrBindAlreadyOpen || fns2 != nil || p != 0 {
			t.Errorf("second Open(%d): %d ReceiveFuncs, port %d, %v; want none, 0, conn.ErrBindAlreadyOpen", again, len(fns2), p, err)
		}
	}
	ip := loopback(t, "v4")
	p := newPeer(t, ip)
	want := packets(3, 100)
	p.send(t, netip.AddrPortFrom(ip, port), want)
	got, eps := newReceiver().read(t, fnFor(t, fns, "v4"), len(want))
	samePackets(t, got, want)
	if err := b.Send(want, eps[0]); err != nil {
		t.Fatal(err)
	}
	back, _ := p.recv(t, len(want))
	samePackets(t, back, want)
}

func TestBatchSizeIsWireguardsIdeal(t *testing.T) {
	if got := NewBind().BatchSize(); got != conn.IdealBatchSize {
		t.Errorf("BatchSize() = %d, want %d", got, conn.IdealBatchSize)
	}
}

func TestParseEndpoint(t *testing.T) {
	b := NewBind()
	for _, tc := range []struct {
		in, dst string
	}{
		{"192.0.2.1:51820", "192.0.2.1:51820"},
		{"[2001:db8::1]:51820", "[2001:db8::1]:51820"},
		{"[::ffff:192.0.2.1]:51820", "192.0.2.1:51820"}, // IPv4-mapped: the udp4 socket's
		{"[fe80::1%eth0]:1", "[fe80::1%eth0]:1"},
	} {
		ep, err := b.ParseEndpoint(tc.in)
		if err != nil {
			t.Errorf("ParseEndpoint(%q): %v", tc.in, err)
			continue
		}
		if got := ep.DstToString(); got != tc.dst {
			t.Errorf("ParseEndpoint(%q).DstToString() = %q, want %q", tc.in, got, tc.dst)
		}
		if ep.SrcIP().IsValid() || ep.SrcToString() != "" {
			t.Errorf("ParseEndpoint(%q) has a source %v", tc.in, ep.SrcIP())
		}
		want := netip.MustParseAddrPort(tc.dst)
		if got, _ := ep.(*Endpoint); got.DstAddrPort() != want || ep.DstIP() != want.Addr() {
			t.Errorf("ParseEndpoint(%q) = %v, want %v", tc.in, got.DstAddrPort(), want)
		}
		if wantBytes, _ := want.MarshalBinary(); string(ep.DstToBytes()) != string(wantBytes) {
			t.Errorf("ParseEndpoint(%q).DstToBytes() = %x, want %x", tc.in, ep.DstToBytes(), wantBytes)
		}
	}
}

func TestParseEndpointRejectsBadStrings(t *testing.T) {
	b := NewBind()
	for _, in := range []string{
		"", " ", "192.0.2.1", "192.0.2.1:", ":51820", "[2001:db8::1]", "2001:db8::1:51820",
		"example.com:51820", "192.0.2.1:65536", "192.0.2.1:-1", "192.0.2.1:51820:1",
		"[192.0.2.1]:51820", "256.0.0.1:1", "\x00:1", "[::1%]:1",
	} {
		ep, err := b.ParseEndpoint(in)
		if err == nil {
			t.Errorf("ParseEndpoint(%q) = %v, want an error", in, ep.DstToString())
		}
		if ep != nil {
			t.Errorf("ParseEndpoint(%q) returned a non-nil Endpoint with its error", in)
		}
	}
}

// TestReceive sends packets from a plain socket, GSO-coalesced where the
// sizes allow, and checks that the ReceiveFunc hands each one up with its
// bytes, in order, with an Endpoint naming the sender and the local
// address it arrived on, for both families and GRO on and off.
func TestReceive(t *testing.T) {
	for _, family := range []string{"v4", "v6"} {
		for _, gro := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/GRO %v", family, gro), func(t *testing.T) {
				ip := loopback(t, family)
				b, fns, port := openBind(t, WithGRO(gro))
				fn := fnFor(t, fns, family)
				if so := b.socketFor(family); so.c.GROEnabled() != gro && gro {
					t.Logf("GRO is off on this host: %s", so.c.Stats().GROOff)
				}
				p := newPeer(t, ip)
				// 300 full-size packets, a shorter one, then a run of small
				// ones and an empty datagram: more than a call's 128.
				want := packets(300, 1452)
				want = append(want, packets(1, 100)...)
				want = append(want, packets(40, 60)...)
				p.send(t, netip.AddrPortFrom(ip, port), want)
				r := newReceiver()
				got, eps := r.read(t, fn, len(want))
				samePackets(t, got, want)
				for i, ep := range eps {
					if ep.DstToString() != p.addr.String() || ep.SrcIP() != ip {
						t.Fatalf("packet %d: endpoint dst %s src %v, want dst %s src %v", i, ep.DstToString(), ep.SrcIP(), p.addr, ip)
					}
				}
				// An empty datagram comes through as size 0. It is sent
				// now, as read skips sizes of 0 as wireguard-go does.
				p.send(t, netip.AddrPortFrom(ip, port), [][]byte{{}})
				n, err := fn(r.bufs, r.sizes, r.eps)
				if err != nil || n != 1 || r.sizes[0] != 0 {
					t.Errorf("empty datagram: n %d, size %d, err %v; want one of size 0", n, r.sizes[0], err)
				}
			})
		}
	}
}

// socketFor returns the open socket of family ("v4", "v6").
func (b *Bind) socketFor(family string) *socket {
	s := b.open.Load()
	if s == nil {
		return nil
	}
	if family == "v6" {
		return s.v6
	}
	return s.v4
}

func TestReceiveIntoFewerBuffers(t *testing.T) {
	_, fns, port := openBind(t)
	fn := fnFor(t, fns, "v4")
	ip := loopback(t, "v4")
	p := newPeer(t, ip)
	want := packets(10, 200)
	p.send(t, netip.AddrPortFrom(ip, port), want)
	r := newReceiver()
	var got [][]byte
	for len(got) < len(want) {
		// Three buffers per call, and sizes and eps longer than packets.
		n, err := fn(r.bufs[:3], r.sizes, r.eps)
		if err != nil {
			t.Fatal(err)
		}
		if n < 1 || n > 3 {
			t.Fatalf("ReceiveFunc with 3 buffers returned %d", n)
		}
		for i := range n {
			got = append(got, append([]byte(nil), r.bufs[i][:r.sizes[i]]...))
		}
	}
	samePackets(t, got, want)
	if n, err := fn(nil, nil, nil); n != 0 || err != nil {
		t.Errorf("ReceiveFunc with no buffers: %d, %v; want 0, nil", n, err)
	}
}

func TestReceiveGivesTruncatedPacketsSizeZero(t *testing.T) {
	_, fns, port := openBind(t, WithGRO(false))
	fn := fnFor(t, fns, "v4")
	ip := loopback(t, "v4")
	p := newPeer(t, ip)
	p.send(t, netip.AddrPortFrom(ip, port), packets(1, 1000))
	p.send(t, netip.AddrPortFrom(ip, port), packets(1, 100))
	r := newReceiver()
	small := [][]byte{make([]byte, 500), make([]byte, 500)}
	got := 0
	var sizes []int
	for got < 2 {
		n, err := fn(small[got:], r.sizes, r.eps)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, r.sizes[:n]...)
		got += n
	}
	if !slices.Equal(sizes, []int{0, 100}) {
		t.Errorf("sizes %v, want [0 100]: a truncated packet is skipped", sizes)
	}
}

// TestSend sends batches of wireguard-go's shapes (equal sizes with a short
// last one, mixed sizes, one packet) and checks that the peer gets each
// packet once, in order, from the Bind's port, with GSO on and off.
func TestSend(t *testing.T) {
	for _, family := range []string{"v4", "v6"} {
		for _, gso := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/GSO %v", family, gso), func(t *testing.T) {
				ip := loopback(t, family)
				b, fns, port := openBind(t, WithGSO(gso))
				fnFor(t, fns, family)
				p := newPeer(t, ip)
				ep, err := b.ParseEndpoint(p.addr.String())
				if err != nil {
					t.Fatal(err)
				}
				var want [][]byte
				batches := [][][]byte{
					append(packets(127, 1420), packets(1, 300)...),
					packets(1, 1420),
					append(append(packets(3, 100), packets(5, 1000)...), packets(2, 1)...),
				}
				for _, bufs := range batches {
					if err := b.Send(bufs, ep); err != nil {
						t.Fatalf("Send of %d packets: %v", len(bufs), err)
					}
					want = append(want, bufs...)
				}
				got, srcs := p.recv(t, len(want))
				samePackets(t, got, want)
				for i, src := range srcs {
					if src.Port() != port {
						t.Fatalf("packet %d came from %v, want port %d", i, src, port)
					}
				}
				so := b.socketFor(family)
				st := so.c.Stats()
				if gso && so.c.GSOEnabled() && st.GSOBatches == 0 {
					t.Errorf("GSO on, but no GSO sends: %+v", st)
				}
				if !gso && st.GSOBatches != 0 {
					t.Errorf("GSO off, but %d GSO sends", st.GSOBatches)
				}
			})
		}
	}
}

func TestSendMoreThanABatch(t *testing.T) {
	b, _, _ := openBind(t)
	ip := loopback(t, "v4")
	p := newPeer(t, ip)
	ep, _ := b.ParseEndpoint(p.addr.String())
	want := packets(300, 500)
	if err := b.Send(want, ep); err != nil {
		t.Fatal(err)
	}
	got, _ := p.recv(t, len(want))
	samePackets(t, got, want)
}

func TestSendErrors(t *testing.T) {
	b := NewBind()
	ep, _ := b.ParseEndpoint("127.0.0.1:9")
	if err := b.Send(packets(1, 10), ep); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send on a closed Bind: %v, want net.ErrClosed", err)
	}
	if _, _, err := b.Open(0); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, bad := range []conn.Endpoint{nil, (*Endpoint)(nil), foreignEndpoint{}} {
		if err := b.Send(packets(1, 10), bad); err != conn.ErrWrongEndpointType {
			t.Errorf("Send to %T: %v, want conn.ErrWrongEndpointType", bad, err)
		}
	}
	if err := b.Send(nil, ep); err != nil {
		t.Errorf("Send of nothing: %v", err)
	}
	// A datagram too large for UDP fails with the kernel's EMSGSIZE, and
	// the Bind goes on working.
	if err := b.Send([][]byte{make([]byte, 70000)}, ep); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("Send of a 70000-byte packet: %v, want EMSGSIZE", err)
	}
	p := newPeer(t, loopback(t, "v4"))
	ep2, _ := b.ParseEndpoint(p.addr.String())
	if err := b.Send(packets(1, 10), ep2); err != nil {
		t.Fatal(err)
	}
	p.recv(t, 1)
}

type foreignEndpoint struct{ conn.Endpoint }

func TestCloseUnblocksReceive(t *testing.T) {
	b, fns, _ := openBind(t)
	errs := make(chan error, len(fns))
	for _, fn := range fns {
		go func() {
			r := newReceiver()
			_, err := fn(r.bufs, r.sizes, r.eps)
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the reads block (if they don't yet, they fail the same way)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	withTimeout(t, 10*time.Second, "a ReceiveFunc blocked across Close", func() {
		for range fns {
			if err := <-errs; !errors.Is(err, net.ErrClosed) {
				t.Errorf("ReceiveFunc after Close: %v, want net.ErrClosed", err)
			}
		}
	})
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseWhileSendingAndReceiving closes the Bind under ReceiveFuncs
// and Sends running flat out, as wireguard-go's bind update does: every
// goroutine stops promptly with net.ErrClosed (a Send may also finish
// first, with nil), and the Bind opens again on the same port. Run with
// -race it also checks the sockets' state is not shared unsafely.
func TestCloseWhileSendingAndReceiving(t *testing.T) {
	ip := loopback(t, "v4")
	b, fns, port := openBind(t)
	fn := fnFor(t, fns, "v4")
	p := newPeer(t, ip)
	toPeer, _ := b.ParseEndpoint(p.addr.String())
	toSelf, _ := b.ParseEndpoint(netip.AddrPortFrom(ip, port).String())
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for _, ep := range []conn.Endpoint{toPeer, toSelf, toSelf} {
		go func() {
			bufs := packets(32, 1000)
			for {
				if err := b.Send(bufs, ep); err != nil {
					errs <- err
					return
				}
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
			}
		}()
	}
	go func() {
		r := newReceiver()
		for {
			if _, err := fn(r.bufs, r.sizes, r.eps); err != nil {
				errs <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond) // let them run
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	withTimeout(t, 10*time.Second, "a Send or ReceiveFunc across Close", func() {
		for range 4 {
			if err := <-errs; err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("across Close: %v, want net.ErrClosed", err)
			}
		}
	})
	if err := b.Send(packets(1, 10), toPeer); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send after Close: %v, want net.ErrClosed", err)
	}
	if _, got, err := b.Open(port); err != nil || got != port {
		t.Fatalf("Open(%d) after Close: port %d, %v", port, got, err)
	}
}

// TestReopen is wireguard-go's bind update: Close, then Open again on the
// same port; the old ReceiveFuncs fail with net.ErrClosed, the new ones
// and Send work.
func TestReopen(t *testing.T) {
	b, old, port := openBind(t)
	ip := loopback(t, "v4")
	p := newPeer(t, ip)
	for round := range 3 {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		fns, got, err := b.Open(port)
		if err != nil {
			t.Fatalf("round %d: Open(%d) after Close: %v", round, port, err)
		}
		if got != port {
			t.Fatalf("round %d: reopened on %d, want %d", round, got, port)
		}
		r := newReceiver()
		for _, fn := range old {
			if _, err := fn(r.bufs, r.sizes, r.eps); !errors.Is(err, net.ErrClosed) {
				t.Errorf("round %d: old ReceiveFunc: %v, want net.ErrClosed", round, err)
			}
		}
		want := packets(5, 100)
		p.send(t, netip.AddrPortFrom(ip, port), want)
		got4, eps := r.read(t, fnFor(t, fns, "v4"), len(want))
		samePackets(t, got4, want)
		if err := b.Send(want, eps[0]); err != nil {
			t.Fatal(err)
		}
		back, _ := p.recv(t, len(want))
		samePackets(t, back, want)
		old = fns
	}
}
