//go:build linux

package testnet

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// setReadBuffer sets c's SO_RCVBUF to size bytes. It first tries
// SO_RCVBUFFORCE, which needs CAP_NET_ADMIN and ignores net.core.rmem_max;
// without the capability it falls back to SO_RCVBUF, which the kernel caps
// at rmem_max.
func setReadBuffer(c *net.UDPConn, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var sockErr error
	if err := rc.Control(func(fd uintptr) {
		sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
	}); err != nil {
		return err
	}
	if sockErr == nil {
		return nil
	}
	return c.SetReadBuffer(size)
}

// receiveBuffer returns the receive buffer c actually has: SO_RCVBUF as the
// kernel reports it, which is twice the size set (the kernel doubles it for
// its bookkeeping) and, without CAP_NET_ADMIN, at most twice
// net.core.rmem_max.
func receiveBuffer(c *net.UDPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var size int
	var sockErr error
	if err := rc.Control(func(fd uintptr) {
		size, sockErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	}); err != nil {
		return 0, err
	}
	if sockErr != nil {
		return 0, os.NewSyscallError("getsockopt", sockErr)
	}
	return size, nil
}
