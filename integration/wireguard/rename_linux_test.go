//go:build linux

package wgbatch

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/batchconn/batchconn/internal/testnet"
)

// TestLinkLocalPeerSurvivesARename: a device whose peer is link-local
// (fe80::b, through the Bind's host's veth) goes on reaching it after the
// interface is renamed (down, new name, up, as udev and container runtimes
// do), without reopening the Bind: wireguard-go's remembered Endpoint,
// which names the old interface, still sends, and so does the Endpoint of
// the peer's next packets, which names the new one (within a second). The
// Bind runs in its host's namespace, ReceiveFunc and Send too, as a daemon
// would, so that names resolve there as they would for it.
func TestLinkLocalPeerSurvivesARename(t *testing.T) {
	pair := testnet.NewPair(t, testnet.LinkConfig{})
	mac := func(h *testnet.Host, link string) string {
		return strings.TrimSpace(h.Exec(t, "cat", "/sys/class/net/"+link+"/address"))
	}
	link := pair.A.Link
	addresses := func() {
		pair.A.Exec(t, "ip", "addr", "replace", "fe80::a/64", "dev", link, "nodad")
		pair.A.Exec(t, "ip", "neigh", "replace", "fe80::b", "lladdr", mac(pair.B, pair.B.Link), "dev", link, "nud", "permanent")
		pair.B.Exec(t, "ip", "neigh", "replace", "fe80::a", "lladdr", mac(pair.A, link), "dev", pair.B.Link, "nud", "permanent")
	}
	pair.B.Exec(t, "ip", "addr", "add", "fe80::b/64", "dev", pair.B.Link, "nodad")
	addresses()

	b := NewBind()
	var fns []conn.ReceiveFunc
	var port uint16
	if err := pair.A.Run(func() (err error) {
		fns, port, err = b.Open(0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fn := fnFor(t, fns, "v6")
	var u *net.UDPConn
	if err := pair.B.Run(func() (err error) {
		u, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p := peerOn(t, u)
	// The peer writes to fe80::a through its own link, named by index
	// (the test runs outside B's namespace).
	bIndex := func() string {
		return strings.TrimSpace(pair.B.Exec(t, "cat", "/sys/class/net/"+pair.B.Link+"/ifindex"))
	}
	toA := netip.AddrPortFrom(netip.MustParseAddr("fe80::a%"+bIndex()), port)

	r := newReceiver()
	// arrive has the peer send a packet, and returns its Endpoint.
	arrive := func(what string) conn.Endpoint {
		t.Helper()
		p.send(t, toA, packets(1, 100))
		var n int
		var err error
		if rerr := pair.A.Run(func() error { n, err = fn(r.bufs, r.sizes, r.eps); return nil }); rerr != nil || err != nil || n != 1 {
			t.Fatalf("%s: ReceiveFunc = %d, %v (%v)", what, n, err, rerr)
		}
		return r.eps[0]
	}
	// reaches sends to ep, from A's namespace, and checks the peer got it.
	reaches := func(ep conn.Endpoint, what string) {
		t.Helper()
		pkts := packets(4, 300) // a GSO run where GSO is on
		var err error
		if rerr := pair.A.Run(func() error { err = b.Send(pkts, ep); return nil }); rerr != nil || err != nil {
			t.Fatalf("%s: Send to %s: %v (%v)", what, ep.DstToString(), err, rerr)
		}
		got, _ := p.recv(t, len(pkts))
		samePackets(t, got, pkts)
	}

	old := arrive("before the rename")
	if want := "[fe80::b%" + link + "]:" + fmt.Sprint(p.addr.Port()); old.DstToString() != want {
		t.Fatalf("the Endpoint is %s, want %s", old.DstToString(), want)
	}
	// No Send before the rename: the Bind learns the old name from its
	// reads alone, as for a peer that has only written so far.

	pair.A.Exec(t, "ip", "link", "set", "dev", link, "down")
	pair.A.Exec(t, "ip", "link", "set", "dev", link, "name", "lan-a")
	pair.A.Exec(t, "ip", "link", "set", "dev", "lan-a", "up")
	link = "lan-a"
	addresses()

	reaches(old, "the Endpoint wireguard-go remembers, after the rename")
	if !old.SrcIP().IsValid() {
		t.Errorf("the Send cleared the remembered Endpoint's sticky source")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		ep := arrive("after the rename")
		if strings.Contains(ep.DstToString(), "%lan-a]") {
			reaches(ep, "the Endpoint of a packet after the rename")
			break
		}
		if !strings.Contains(ep.DstToString(), "%veth-a]") || time.Now().After(deadline) {
			t.Fatalf("after the rename to lan-a, the peer's packets come from %s", ep.DstToString())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A ParseEndpoint of the old name, as a configuration written before
	// the rename would give, still reaches the peer too.
	ep, err := b.ParseEndpoint(old.DstToString())
	if err != nil {
		t.Fatal(err)
	}
	reaches(ep, "a parsed Endpoint naming the old interface")
}
