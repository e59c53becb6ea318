//go:build !linux

package testnet

import (
	"errors"
	"net"
)

// setReadBuffer sets c's SO_RCVBUF to size bytes, or to the system's
// maximum if that is lower.
func setReadBuffer(c *net.UDPConn, size int) error {
	return c.SetReadBuffer(size)
}

// receiveBuffer would return the receive buffer c actually has; the net
// package offers no way to read it back, so it reports
// errors.ErrUnsupported off Linux.
func receiveBuffer(c *net.UDPConn) (int, error) {
	return 0, errors.ErrUnsupported
}
