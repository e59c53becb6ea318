//go:build linux

package wgbatch

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// controlSocket sets up a Bind socket before it is bound: socket buffers of
// bufBytes (forced past the sysctl limits where the process may), packet
// info on every received packet (the sticky source), and IPv6-only for
// udp6, so the udp4 socket can share its port.
func controlSocket(network string, rc syscall.RawConn, bufBytes int) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		s := int(fd)
		if bufBytes > 0 {
			// Up to net.core.rmem_max / wmem_max, then past them with
			// CAP_NET_ADMIN; failing is only slower, as for StdNetBind.
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, bufBytes)
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUF, bufBytes)
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bufBytes)
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, bufBytes)
		}
		switch network {
		case "udp4":
			err = os.NewSyscallError("setsockopt", unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_PKTINFO, 1))
		case "udp6":
			err = os.NewSyscallError("setsockopt", unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1))
			if err == nil {
				err = os.NewSyscallError("setsockopt", unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1))
			}
		default:
			err = fmt.Errorf("wgbatch: unsupported network %q", network)
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// afterListen finishes setting up a Bind socket once it is bound; on Linux
// controlSocket did it all.
func afterListen(*net.UDPConn, int) {}

// setMark sets SO_MARK on c's socket.
func setMark(c *net.UDPConn, mark uint32) error {
	return setsockopt(c, unix.SOL_SOCKET, unix.SO_MARK, int(mark))
}

func setsockopt(c *net.UDPConn, level, opt, value int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), level, opt, value)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt", serr)
}
