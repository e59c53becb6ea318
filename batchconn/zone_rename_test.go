//go:build linux

package batchconn_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/batchconn/batchconn/batchconn"
	"github.com/batchconn/batchconn/internal/testnet"
)

// A renameLink is a veth pair with link-local addresses, a peer socket on
// A and Conns on B (GRO on and off) that talk to it, and B's link to rename.
type renameLink struct {
	p    *testnet.Pair
	peer *net.UDPConn // on A: [::]:port
	conn map[bool]*batchconn.Conn
	link string // B's link's name now
}

// zonePeer is A's link-local address; B's is fe80::b.
var zonePeer = netip.MustParseAddr("fe80::a")

func newRenameLink(t *testing.T) *renameLink {
	t.Helper()
	p := testnet.NewPair(t, testnet.LinkConfig{})
	l := &renameLink{p: p, conn: map[bool]*batchconn.Conn{}, link: p.B.Link}
	p.A.Exec(t, "ip", "addr", "add", "fe80::a/64", "dev", p.A.Link, "nodad")
	l.upB(t)
	l.peer = listenIn(t, p.A, "udp6", netip.MustParseAddrPort("[::]:0"))
	for _, gro := range []bool{false, true} {
		c, err := batchconn.New(listenIn(t, p.B, "udp6", netip.MustParseAddrPort("[::]:0")), batchconn.WithGRO(gro))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if gro && !c.GROEnabled() {
			t.Skipf("no UDP GRO: %s", c.Stats().GROOff)
		}
		l.conn[gro] = c
	}
	return l
}

// upB gives B's link its address and A's neighbour entry, as after it
// comes up (taking a link down drops both).
func (l *renameLink) upB(t *testing.T) {
	t.Helper()
	p := l.p
	p.B.Exec(t, "ip", "addr", "replace", "fe80::b/64", "dev", l.link, "nodad")
	p.B.Exec(t, "ip", "neigh", "replace", "fe80::a", "lladdr", linkMAC(t, p.A), "dev", l.link, "nud", "permanent")
	p.A.Exec(t, "ip", "neigh", "replace", "fe80::b", "lladdr", trimmed(p.B.Exec(t, "cat", "/sys/class/net/"+l.link+"/address")), "dev", p.A.Link, "nud", "permanent")
}

// rename renames B's link as udev and container runtimes do: down, new
// name, up.
func (l *renameLink) rename(t *testing.T, name string) {
	t.Helper()
	p := l.p
	p.B.Exec(t, "ip", "link", "set", "dev", l.link, "down")
	p.B.Exec(t, "ip", "link", "set", "dev", l.link, "name", name)
	p.B.Exec(t, "ip", "link", "set", "dev", name, "up")
	l.link = name
	l.upB(t)
}

// fromPeer sends payload from A to c, zone by index (A's link is index 10
// in A's namespace, and the test runs outside it).
func (l *renameLink) fromPeer(t *testing.T, c *batchconn.Conn, payload []byte) {
	t.Helper()
	dst := netip.AddrPortFrom(netip.MustParseAddr("fe80::b%10"), addrOf(c).Port())
	if _, err := l.peer.WriteToUDPAddrPort(payload, dst); err != nil {
		t.Fatal(err)
	}
}

// readFrom reads one datagram with c and returns its source.
func readFrom(t *testing.T, c *batchconn.Conn, want []byte) netip.AddrPort {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	msgs := recvMsgs(4, 1500, 0)
	n, err := c.ReadMessages(context.Background(), msgs[:1], 0)
	if n != 1 || err != nil || !bytes.Equal(msgs[0].Buffers[0][:msgs[0].N], want) {
		t.Fatalf("ReadMessages = %d, %v, %q; want %q", n, err, msgs[0].Buffers[0][:msgs[0].N], want)
	}
	return msgs[0].Addr
}

// peerGets waits for payload at A's socket.
func (l *renameLink) peerGets(t *testing.T, payload []byte) {
	t.Helper()
	l.peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for {
		n, _, err := l.peer.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("the peer waiting for %q: %v", payload, err)
		}
		if bytes.Equal(buf[:n], payload) {
			return
		}
	}
}

func trimmed(s string) string { return string(bytes.TrimSpace([]byte(s))) }

// TestContractR4ZoneNamesFollowRenames renames the interface a Conn's
// link-local peer is reached through: the sources the Conn reports name
// the interface's new name within zoneRecheck (a second), GRO on and off,
// as the kernel names it (a *net.UDPConn reports it only once the net
// package refreshes its cache: within a minute, or at its next miss).
func TestContractR4ZoneNamesFollowRenames(t *testing.T) {
	l := newRenameLink(t)
	for gro, c := range l.conn {
		for range 2 { // the second read's call looks at the names
			l.fromPeer(t, c, []byte("before"))
			if src := readFrom(t, c, []byte("before")); src != netip.AddrPortFrom(zonePeer.WithZone(l.link), l.peer.LocalAddr().(*net.UDPAddr).AddrPort().Port()) {
				t.Fatalf("%s: source %v, want fe80::a%%%s", groName(gro), src, l.link)
			}
		}
	}
	l.rename(t, "lan-b")
	for gro, c := range l.conn {
		deadline := time.Now().Add(2 * time.Second) // zoneRecheck, and then some
		for i := 0; ; i++ {
			payload := fmt.Appendf(nil, "after %d", i)
			l.fromPeer(t, c, payload)
			src := readFrom(t, c, payload)
			if src.Addr().Zone() == "lan-b" {
				break
			}
			if src.Addr().Zone() != "veth-b" || time.Now().After(deadline) {
				t.Fatalf("%s: source %v after the rename to lan-b", groName(gro), src)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestContractC8ZoneNamesSurviveRenames checks that a long-running Conn
// keeps reaching a link-local peer whose interface was renamed: to the
// address a read handed out before the rename, and to the one it hands out
// after, with WriteMessages and WriteBuffersTo, GRO on and off, allocating
// nothing per call once warm, with the datagrams going out of the right
// interface.
func TestContractC8ZoneNamesSurviveRenames(t *testing.T) {
	l := newRenameLink(t)
	port := l.peer.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	before := map[bool]netip.AddrPort{}
	for gro, c := range l.conn {
		l.fromPeer(t, c, []byte("hello"))
		before[gro] = readFrom(t, c, []byte("hello"))
		if before[gro] != netip.AddrPortFrom(zonePeer.WithZone("veth-b"), port) {
			t.Fatalf("source %v", before[gro])
		}
	}
	l.rename(t, "lan-b")
	time.Sleep(1100 * time.Millisecond) // past zoneRecheck: the Conns have looked
	ctx := context.Background()
	for gro, c := range l.conn {
		after := netip.AddrPortFrom(zonePeer.WithZone("lan-b"), port)
		for _, dst := range []netip.AddrPort{before[gro], after} {
			payload := fmt.Appendf(nil, "%s to %v, WriteBuffersTo", groName(gro), dst)
			if n, err := c.WriteBuffersTo(ctx, [][]byte{payload}, nil, dst, 0); n != 1 || err != nil {
				t.Fatalf("%s: WriteBuffersTo(%v) = %d, %v", groName(gro), dst, n, err)
			}
			l.peerGets(t, payload)
			payload = fmt.Appendf(nil, "%s to %v, WriteMessages", groName(gro), dst)
			msgs := []batchconn.Message{{Addr: dst, Buffers: [][]byte{payload}}, {Addr: dst, Buffers: [][]byte{payload}}}
			if n, err := c.WriteMessages(ctx, msgs, 0); n != 2 || err != nil {
				t.Fatalf("%s: WriteMessages(%v) = %d, %v", groName(gro), dst, n, err)
			}
			l.peerGets(t, payload)
		}
		// The steady state: reads of the peer's datagrams, which name the
		// new zone, and sends to the old name, allocate nothing.
		const rounds = 50
		for i := range rounds + 1 {
			l.fromPeer(t, c, fmt.Appendf(nil, "%04d", i))
		}
		readFrom(t, c, []byte("0000"))
		msgs := recvMsgs(1, 1500, 0)
		bufs := [][]byte{[]byte("steady")}
		var failed error
		allocs := testing.AllocsPerRun(rounds-1, func() {
			n, err := c.ReadMessages(ctx, msgs, 0)
			if n != 1 || err != nil || msgs[0].Addr != after {
				failed = fmt.Errorf("ReadMessages = %d, %v, from %v", n, err, msgs[0].Addr)
			}
			if n, err := c.WriteBuffersTo(ctx, bufs, nil, before[gro], 0); n != 1 || err != nil {
				failed = fmt.Errorf("WriteBuffersTo = %d, %v", n, err)
			}
		})
		if failed != nil {
			t.Fatalf("%s: %v", groName(gro), failed)
		}
		if allocs != 0 {
			t.Errorf("%s: a read from and a send to a renamed interface's peer allocate %v times, want 0", groName(gro), allocs)
		}
	}
}
