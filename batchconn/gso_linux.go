//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// gsoSupported asks the kernel whether the socket can do UDP GSO: reading
// UDP_SEGMENT works from Linux 4.18, the first kernel with UDP GSO.
func gsoSupported(rc syscall.RawConn) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		_, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	})
	if cerr != nil {
		return cerr
	}
	return wrapSyscall("getsockopt UDP_SEGMENT", err)
}
