package wgbatch

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/batchconn/batchconn/batchconn"
)

// openBind opens a Bind on port 0 and closes it when the test ends.
func openBind(t testing.TB, opts ...Option) (*Bind, []conn.ReceiveFunc, uint16) {
	t.Helper()
	b := NewBind(opts...)
	fns, port, err := b.Open(0)
	if err != nil {
		t.Fatalf("Open(0): %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b, fns, port
}

// fnFor returns the ReceiveFunc of the family ("v4" or "v6"), skipping the
// test if the Bind has none.
func fnFor(t testing.TB, fns []conn.ReceiveFunc, family string) conn.ReceiveFunc {
	t.Helper()
	for _, fn := range fns {
		if fn.PrettyName() == family {
			return fn
		}
	}
	t.Skipf("the Bind has no %s socket on this host", family)
	return nil
}

// loopback returns the loopback address of family, skipping the test
// where IPv6 is missing.
func loopback(t testing.TB, family string) netip.Addr {
	t.Helper()
	if family == "v4" {
		return netip.MustParseAddr("127.0.0.1")
	}
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	c.Close()
	return netip.IPv6Loopback()
}

// peer is a plain socket on the loopback address of a family, the other
// end of a Bind in a test.
type peer struct {
	*batchconn.Conn
	addr netip.AddrPort
}

func newPeer(t testing.TB, ip netip.Addr) *peer {
	t.Helper()
	network := "udp4"
	if ip.Is6() {
		network = "udp6"
	}
	u, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatalf("listen %s: %v", ip, err)
	}
	return peerOn(t, u)
}

// peerOn makes a peer of u, a socket opened elsewhere (in a namespace, say),
// and closes it when the test ends.
func peerOn(t testing.TB, u *net.UDPConn) *peer {
	t.Helper()
	if err := u.SetReadBuffer(8 << 20); err != nil {
		t.Fatal(err)
	}
	c, err := batchconn.New(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{Conn: c, addr: u.LocalAddr().(*net.UDPAddr).AddrPort()}
}

// send sends each of pkts as one datagram to dst, with GSO where sizes
// allow, so that a GRO receiver gets them coalesced.
func (p *peer) send(t testing.TB, dst netip.AddrPort, pkts [][]byte) {
	t.Helper()
	msgs := make([]batchconn.Message, len(pkts))
	for i, b := range pkts {
		msgs[i] = batchconn.Message{Addr: dst, Buffers: [][]byte{b}}
	}
	for len(msgs) > 0 {
		n, err := p.WriteMessages(context.Background(), msgs, 0)
		if err != nil {
			t.Fatalf("peer send: %v", err)
		}
		msgs = msgs[n:]
	}
}

// recv reads n datagrams, each with its source.
func (p *peer) recv(t testing.TB, n int) (pkts [][]byte, srcs []netip.AddrPort) {
	t.Helper()
	if err := p.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	for range n {
		k, src, err := p.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("peer received %d of %d datagrams: %v", len(pkts), n, err)
		}
		pkts = append(pkts, bytes.Clone(buf[:k]))
		srcs = append(srcs, src)
	}
	return pkts, srcs
}

// packets returns n numbered packets of size bytes each: the first 4 bytes
// (or fewer, in a shorter packet) hold the number, the rest a pattern of it.
func packets(n, size int) [][]byte {
	pkts := make([][]byte, n)
	for i := range pkts {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(i + j)
		}
		var num [4]byte
		binary.BigEndian.PutUint32(num[:], uint32(i))
		copy(b, num[:]) // as much of it as fits
		pkts[i] = b
	}
	return pkts
}

// receiver holds wireguard-go-shaped receive buffers.
type receiver struct {
	bufs  [][]byte
	sizes []int
	eps   []conn.Endpoint
}

func newReceiver() *receiver {
	r := &receiver{bufs: make([][]byte, batch), sizes: make([]int, batch), eps: make([]conn.Endpoint, batch)}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, 1<<16-1) // wireguard-go's MaxMessageSize
	}
	return r
}

// read calls fn until it has count packets, and returns them with their
// endpoints, skipping entries of size 0 as wireguard-go does.
func (r *receiver) read(t testing.TB, fn conn.ReceiveFunc, count int) ([][]byte, []conn.Endpoint) {
	t.Helper()
	var pkts [][]byte
	var eps []conn.Endpoint
	for len(pkts) < count {
		n, err := fn(r.bufs, r.sizes, r.eps)
		if err != nil {
			t.Fatalf("ReceiveFunc after %d of %d packets: %v", len(pkts), count, err)
		}
		if n == 0 {
			t.Fatalf("ReceiveFunc returned 0 packets and no error")
		}
		for i := range n {
			if r.sizes[i] == 0 {
				continue
			}
			pkts = append(pkts, bytes.Clone(r.bufs[i][:r.sizes[i]]))
			eps = append(eps, r.eps[i])
		}
	}
	return pkts, eps
}

// withTimeout runs fn on a goroutine and fails the test if it does not
// return within d: a guard against a hang, not a measurement.
func withTimeout(t testing.TB, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// samePackets fails the test unless got equals want, packet by packet.
func samePackets(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d packets, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("packet %d: got %d bytes %x..., want %d bytes %x...", i, len(got[i]), head(got[i]), len(want[i]), head(want[i]))
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }
