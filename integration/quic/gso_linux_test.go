package quicbatch

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// kernelGSO reports whether the kernel offers UDP GSO on a loopback socket,
// probed the way quic-go probes it (getsockopt UDP_SEGMENT).
func kernelGSO(t testing.TB) bool {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return false
	}
	return serr == nil
}
