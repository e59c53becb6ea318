// Package pionice shows batchconn under pion/ice, a consumer nobody here
// wrote: a *batchconn.Conn is the socket of an ice.UDPMuxDefault, the
// single port an SFU or TURN-like server multiplexes its ICE sessions on.
// pion needs only net.PacketConn from it (its ReadFrom and WriteTo, called
// from many goroutines, one datagram each), and a LocalAddr that is a
// *net.UDPAddr. The test in this directory connects two ICE sessions over
// one such mux and sends data both ways.
//
// It is its own module, so that the library's go.mod does not gain pion;
// run it from this directory:
//
//	cd examples/pion-ice && go test ./...
package pionice
