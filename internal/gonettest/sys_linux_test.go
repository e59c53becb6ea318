//go:build linux && !batchconn_sendmsg

package gonettest

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// replySourceOn reports whether c's socket asks the kernel for packet info
// (IP_PKTINFO, IPV6_RECVPKTINFO), which a Conn turns on for its reply
// sources (batchconn.WithReplySource). known is false where a Conn has no
// reply sources.
func replySourceOn(c interface {
	SyscallConn() (syscall.RawConn, error)
}) (on, known bool, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, false, err
	}
	var v int
	var serr error
	err = rc.Control(func(fd uintptr) {
		var domain int
		if domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); serr != nil {
			return
		}
		if domain == unix.AF_INET {
			v, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO)
		} else {
			v, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO)
		}
	})
	if err == nil {
		err = serr
	}
	return v != 0, err == nil, err
}
