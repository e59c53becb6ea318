//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// groEnable turns UDP GRO on for the socket (Linux 5.0 and later): the kernel
// may then hand up many datagrams of one flow as one buffer, with a UDP_GRO
// control message holding the datagram size.
func groEnable(rc syscall.RawConn) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1)
	})
	if cerr != nil {
		return cerr
	}
	return wrapSyscall("setsockopt UDP_GRO", err)
}
