// Package pionice shows batchconn under pion/ice, a consumer nobody here
// wrote: a *batchconn.Conn is the socket of an ice.UDPMuxDefault, the
// single port an SFU or TURN-like server multiplexes its ICE sessions on.
// pion needs net.PacketConn from it and a LocalAddr that is a
// *net.UDPAddr; pion/ice v4.4.5 and later also look for ReadFromAddrPort
// and WriteToAddrPort (its AddrPortReaderWriter) on any conn and then read
// and write without allocating an address per packet, and a Conn has them.
//
// The tests in this directory connect two ICE sessions over one such mux
// and send data both ways (ice_test.go), and check that pion takes its
// allocation-free path on a Conn: 0 allocations per round trip, as on a
// *net.UDPConn, measured the way pion's own TestUDPConnReadWriteDoesNotAllocate
// does (alloc_test.go).
//
// It is its own module, so that the library's go.mod does not gain pion;
// run it from this directory:
//
//	cd examples/pion-ice && go test ./...
package pionice
