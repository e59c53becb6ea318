//go:build !unix

package batchconn

import (
	"net"
	"syscall"
)

// socketFamily derives the socket's family from its local address: an IPv4
// address means AF_INET. Without a portable getsockopt here, IPV6_V6ONLY is
// taken to be off, so an IPv4 destination on an IPv6-only socket is refused
// by the kernel rather than by WriteMessages.
func socketFamily(udp *net.UDPConn, _ syscall.RawConn) (sock4, v6only bool, err error) {
	ua, ok := udp.LocalAddr().(*net.UDPAddr)
	if !ok || ua == nil {
		return false, false, syscall.EINVAL
	}
	return ua.IP.To4() != nil, false, nil
}
