//go:build !linux

package quicbatch

import (
	"net"

	"github.com/batchconn/batchconn/batchconn"
)

// readConn returns the batchconn.Conn quic-go's reads go through. Off Linux
// the sender writes on the socket directly, so reads get a batchconn.Conn of
// their own on the same socket (one recvmsg per datagram; no GRO there).
func readConn(udp *net.UDPConn, _ *sender, cfg config) (*batchconn.Conn, error) {
	return batchconn.New(udp, batchconn.WithGSO(false), batchconn.WithGRO(cfg.gro))
}
