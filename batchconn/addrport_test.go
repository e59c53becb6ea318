//go:build linux

package batchconn_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/batchconn/batchconn/batchconn"
)

// addrPortReaderWriter is pion/ice's AddrPortReaderWriter (addr.go, v4.4.5
// and later): a conn with these methods gets pion's allocation-free path.
type addrPortReaderWriter interface {
	ReadFromAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// TestPionAddrPortPath checks that a Conn, held as a net.PacketConn as
// pion holds it, has pion's AddrPort methods, and that a round trip through
// them allocates nothing, GRO off and on.
func TestPionAddrPortPath(t *testing.T) {
	for _, gro := range []bool{false, true} {
		t.Run(groName(gro), func(t *testing.T) {
			var pc net.PacketConn = reader(t, "udp4", gro)
			c, ok := pc.(addrPortReaderWriter)
			if !ok {
				t.Fatal("a *batchconn.Conn is not an AddrPortReaderWriter: pion/ice allocates on every packet through it")
			}
			peer := listen(t, "udp4")
			dst := addrOf(pc.(*batchconn.Conn))
			out, in := []byte("ping"), make([]byte, 64)
			roundTrip := func() {
				if _, err := peer.WriteToUDPAddrPort(out, dst); err != nil {
					t.Fatal(err)
				}
				n, from, err := c.ReadFromAddrPort(in)
				if err != nil || string(in[:n]) != "ping" || from != addrOf(peer) {
					t.Fatalf("ReadFromAddrPort = %q, %v, %v", in[:n], from, err)
				}
				if _, err := c.WriteToAddrPort(in[:n], from); err != nil {
					t.Fatal(err)
				}
				if _, _, err := peer.ReadFromUDPAddrPort(in); err != nil {
					t.Fatal(err)
				}
			}
			roundTrip()
			if a := testing.AllocsPerRun(200, roundTrip); a != 0 {
				t.Errorf("a round trip through ReadFromAddrPort and WriteToAddrPort allocates %v times", a)
			}
		})
	}
}
