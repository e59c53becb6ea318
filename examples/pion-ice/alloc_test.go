package pionice

import (
	"net"
	"testing"

	"github.com/pion/ice/v4"

	"github.com/batchconn/batchconn/batchconn"
)

// plainPacketConn hides every method of a *net.UDPConn but net.PacketConn's,
// as wrappers commonly do: pion must fall back to ReadFrom and WriteTo, and
// allocate a net.Addr per packet. It is the control that shows the
// allocation test below can fail.
type plainPacketConn struct{ net.PacketConn }

// muxSockets are the sockets a UDPMuxDefault is tried on, with the
// allocations per round trip pion's data path makes on each.
var muxSockets = []struct {
	name   string
	listen func() (net.PacketConn, error)
	// allocation-free: pion's AddrPortReaderWriter path is taken.
	addrPort bool
}{
	{"a *net.UDPConn", func() (net.PacketConn, error) {
		return net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	}, true},
	{"a *batchconn.Conn", func() (net.PacketConn, error) {
		return batchconn.Listen("udp4", "127.0.0.1:0")
	}, true},
	{"a *batchconn.Conn with a write queue", func() (net.PacketConn, error) {
		return batchconn.Listen("udp4", "127.0.0.1:0", batchconn.WithWriteQueue(1<<20))
	}, true},
	{"a *batchconn.Conn with GRO", func() (net.PacketConn, error) {
		return batchconn.Listen("udp4", "127.0.0.1:0", batchconn.WithGRO(true))
	}, true},
	{"a wrapper with only net.PacketConn's methods", func() (net.PacketConn, error) {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		return plainPacketConn{c}, err
	}, false},
}

// TestUDPMuxTakesAddrPortPath: pion/ice's UDPMuxDefault hands out
// connections with its allocation-free AddrPortReaderWriter methods only
// when its socket has ReadFromAddrPort and WriteToAddrPort (or is a
// concrete *net.UDPConn); a *batchconn.Conn has them.
func TestUDPMuxTakesAddrPortPath(t *testing.T) {
	for _, s := range muxSockets {
		t.Run(s.name, func(t *testing.T) {
			c, err := s.listen()
			if err != nil {
				t.Fatal(err)
			}
			mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: c})
			t.Cleanup(func() { mux.Close(); c.Close() })
			pc, err := mux.GetConn("ufrag", mux.LocalAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			_, got := pc.(ice.AddrPortReaderWriter)
			if got != s.addrPort {
				t.Errorf("the mux's connection is an ice.AddrPortReaderWriter: %v, want %v", got, s.addrPort)
			}
		})
	}
}

// TestUDPMuxRoundTripAllocations measures the way pion/ice's own
// TestUDPConnReadWriteDoesNotAllocate does (v4.4.9, transport_test.go): a
// connected pair of agents, keepalives off so nothing else runs, and
// testing.AllocsPerRun over a synchronous round trip, here both ways:
// client Write, server Read, server Write, client Read. The server agent
// sits on a UDPMuxDefault over each socket; the client on pion's own
// sockets. On a Conn, as on a *net.UDPConn, pion allocates nothing; on a
// plain net.PacketConn it allocates the addresses of ReadFrom and WriteTo.
func TestUDPMuxRoundTripAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: connects five pairs of ICE agents")
	}
	for _, s := range muxSockets {
		t.Run(s.name, func(t *testing.T) {
			c, err := s.listen()
			if err != nil {
				t.Fatal(err)
			}
			mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: c})
			t.Cleanup(func() { mux.Close(); c.Close() })
			quiet := []ice.AgentOption{
				ice.WithKeepaliveInterval(0),
				ice.WithDisconnectedTimeout(0),
				ice.WithFailedTimeout(0),
			}
			server := newAgent(t, append(quiet, ice.WithUDPMux(mux))...)
			client := newAgent(t, quiet...)
			sc, cc := connect(t, server, client)

			packet := make([]byte, 1200)
			buf := make([]byte, 1500)
			var failure error
			step := func(err error) {
				if err != nil && failure == nil {
					failure = err
				}
			}
			roundTrip := func() {
				// A read deadline would allocate (its timer); a lost
				// datagram on loopback is not expected, and the test's
				// own timeout catches one.
				_, err := cc.Write(packet)
				step(err)
				_, err = sc.Read(buf)
				step(err)
				_, err = sc.Write(packet)
				step(err)
				_, err = cc.Read(buf)
				step(err)
			}
			// The first packets take pion's slow paths (address
			// registration), and the Conn grows its pools once.
			for range 100 {
				roundTrip()
			}
			allocs := testing.AllocsPerRun(1000, roundTrip)
			if failure != nil {
				t.Fatal(failure)
			}
			t.Logf("%.2f allocations per round trip", allocs)
			switch {
			case s.addrPort && allocs != 0:
				t.Errorf("%.2f allocations per round trip through the mux, want 0", allocs)
			case !s.addrPort && allocs == 0:
				t.Errorf("0 allocations per round trip through a plain net.PacketConn: the measurement cannot see pion's fallback")
			}
		})
	}
}
