//go:build unix

package batchconn

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// socketFamily reports whether the socket is AF_INET and, if it is AF_INET6,
// whether IPV6_V6ONLY is set.
func socketFamily(_ *net.UDPConn, rc syscall.RawConn) (sock4, v6only bool, err error) {
	cerr := rc.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		sa, err = unix.Getsockname(int(fd))
		if err != nil {
			return
		}
		switch sa.(type) {
		case *unix.SockaddrInet4:
			sock4 = true
		case *unix.SockaddrInet6:
			var v int
			v, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
			v6only = v != 0
		default:
			err = unix.EAFNOSUPPORT
		}
	})
	if cerr != nil {
		return false, false, cerr
	}
	if err != nil {
		return false, false, wrapSyscall("getsockopt", err)
	}
	return sock4, v6only, nil
}
