//go:build !linux

package testnet

import "net"

// setReadBuffer sets c's SO_RCVBUF to size bytes, or to the system's
// maximum if that is lower.
func setReadBuffer(c *net.UDPConn, size int) error {
	return c.SetReadBuffer(size)
}
