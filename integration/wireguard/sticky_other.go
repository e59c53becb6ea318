//go:build !linux

package wgbatch

import (
	"net"
	"syscall"
)

// Sticky sources need IP_PKTINFO and IPV6_PKTINFO as Linux defines them;
// elsewhere a Bind has none, as StdNetBind has none off Linux, and packets
// leave from the address the kernel's routing picks.

func controlSocket(string, syscall.RawConn, int) error { return nil }

// afterListen sizes the socket's buffers; failing is only slower.
func afterListen(c *net.UDPConn, bufBytes int) {
	if bufBytes > 0 {
		_ = c.SetReadBuffer(bufBytes)
		_ = c.SetWriteBuffer(bufBytes)
	}
}

// setMark does nothing off Linux.
func setMark(*net.UDPConn, uint32) error { return nil }
