package main

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/batchconn/batchconn/internal/testnet"
)

// The wildcard check: a server bound to a wildcard address (0.0.0.0, [::])
// on a host with more than one local address must answer from the address
// each query was sent to. A client that checks the reply's source (dig,
// every resolver, any connected UDP socket) otherwise drops the reply and
// times out.
//
// miekg/dns does it on a concrete *net.UDPConn (IP_PKTINFO / IPV6_PKTINFO:
// it learns each query's destination and writes it as the reply's source),
// and on no other conn: there it calls ReadFrom and WriteTo, and the
// kernel picks the source. So on a Conn the Conn itself does it: replies
// leave from the address the peer wrote to (CONTRACT.md C23,
// WithReplySource, on by default for a wildcard-bound Conn; issue 24
// item 1). The udpconn case shows the check passes where miekg/dns sets
// the source, and the packetconn case that it tells a wrong source from a
// right one.

// wildcardSockets are the sockets checked, and whether the check must pass
// on each. On packetconn (a *net.UDPConn behind only net.PacketConn's
// methods) the reply comes from the kernel's choice, always: the control.
var wildcardSockets = []struct {
	name      string
	rightAddr bool
}{
	{"udpconn", true},
	{"packetconn", false},
	{"conn", true},
	{"conn-queue", true},
}

// notC23 says what a Conn's reply from the wrong address means.
const notC23 = "the Conn did not reply from the address the peer wrote to, as CONTRACT.md C23 " +
	"(WithReplySource, on by default for a wildcard-bound Conn) has it; " +
	"dig and any client with a connected socket time out on such a reply"

// checkSource queries server from c and checks where the reply came from.
func checkSource(t *testing.T, socket string, rightAddr bool, c *net.UDPConn, server netip.AddrPort) {
	t.Helper()
	_, src, err := queryFrom(c, server)
	if err != nil {
		t.Fatalf("%s: %v", socket, err)
	}
	switch {
	case src == server && rightAddr:
		t.Logf("the reply to a query at %v came from %v", server, src)
	case src == server:
		t.Errorf("the control answered from %v, the queried address: the check cannot tell a wrong source", src)
	case !rightAddr:
		t.Logf("the control: the reply to a query at %v came from %v, as expected on miekg/dns's generic path", server, src)
	case socket == "conn" || socket == "conn-queue":
		t.Errorf("the reply to a query at %v came from %v: %s", server, src, notC23)
	default:
		t.Errorf("the reply to a query at %v came from %v, want %v", server, src, server)
	}
}

// TestWildcardRepliesFromQueriedAddress: the server on 0.0.0.0, queried at
// 127.0.0.1 and at 127.0.0.2 (both local: Linux routes 127.0.0.0/8 to lo).
func TestWildcardRepliesFromQueriedAddress(t *testing.T) {
	for _, s := range wildcardSockets {
		t.Run(s.name, func(t *testing.T) {
			port := serveOn(t, s.name, "udp4", "0.0.0.0:0").(*net.UDPAddr).Port
			c := testnet.ListenUDP(t, "udp4")
			for _, to := range []string{"127.0.0.1", "127.0.0.2"} {
				server := netip.AddrPortFrom(netip.MustParseAddr(to), uint16(port))
				checkSource(t, s.name, s.rightAddr || to == "127.0.0.1", c, server)
			}
		})
	}
}

// TestWildcardRepliesFromQueriedAddressVeth: across a veth link between two
// network namespaces (root), the server in B on a wildcard address, B
// with two addresses of each family, queried from A at the one the kernel
// would not choose as a source: IPv4 (0.0.0.0), IPv6 ([::]), and a
// dual-stack socket ([::], network "udp") queried over IPv4. The second
// IPv4 address is secondary (the kernel picks the primary); the second
// IPv6 address is deprecated (preferred_lft 0: RFC 6724 rule 3 makes the
// kernel avoid it as a source, yet it still takes queries).
func TestWildcardRepliesFromQueriedAddressVeth(t *testing.T) {
	p := testnet.NewPair(t, testnet.LinkConfig{})
	a4 := p.B.Addr4.As4()
	second4 := netip.AddrFrom4([4]byte{a4[0], a4[1], a4[2], a4[3] + 100})
	second6 := netip.MustParseAddr(p.B.Addr6.String() + "00") // ...::2 -> ...::200
	p.B.Exec(t, "ip", "addr", "add", second4.String()+"/24", "dev", p.B.Link)
	p.B.Exec(t, "ip", "addr", "add", second6.String()+"/64", "dev", p.B.Link, "nodad", "preferred_lft", "0")
	cases := []struct {
		name, network, address string
		second                 netip.Addr
		client                 string
	}{
		{"IPv4 on 0.0.0.0", "udp4", "0.0.0.0:0", second4, "udp4"},
		{"IPv6 on [::]", "udp6", "[::]:0", second6, "udp6"},
		{"dual-stack [::] queried over IPv4", "udp", "[::]:0", second4, "udp4"},
	}
	for _, tc := range cases {
		for _, s := range wildcardSockets {
			t.Run(fmt.Sprintf("%s/%s", tc.name, s.name), func(t *testing.T) {
				var addr net.Addr
				if err := p.B.Run(func() error {
					pc, err := listen(s.name, tc.network, tc.address, 1<<20)
					if err != nil {
						return err
					}
					stop, _, err := start(pc)
					if err != nil {
						return err
					}
					t.Cleanup(func() { stop() })
					addr = pc.LocalAddr()
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				server := netip.AddrPortFrom(tc.second, uint16(addr.(*net.UDPAddr).Port))
				checkSource(t, s.name, s.rightAddr, p.A.ListenUDP(t, tc.client, 0), server)
			})
		}
	}
}
