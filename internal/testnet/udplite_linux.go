package testnet

import (
	"net"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// ListenUDPLite opens a UDP-Lite socket bound to ip (port 0) and closes it
// in t.Cleanup. To Go it is a *net.UDPConn, and the kernel fails every GSO
// send on it with EIO (udp_send_skb: "is_udplite"), the error a device
// that cannot segment gives; on loopback, which checksums in software, no
// other socket can produce it. The test is skipped where the kernel has
// no UDP-Lite (it is deprecated).
func ListenUDPLite(t testing.TB, ip netip.Addr) *net.UDPConn {
	t.Helper()
	var family int
	var sa unix.Sockaddr
	if ip.Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: ip.As4()}
	} else {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Addr: ip.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDPLITE)
	if err != nil {
		t.Skipf("testnet: no UDP-Lite in this kernel (it is deprecated): %v", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		t.Fatalf("testnet: binding a UDP-Lite socket to %v: %v", ip, err)
	}
	f := os.NewFile(uintptr(fd), "udplite")
	defer f.Close()
	pc, err := net.FilePacketConn(f)
	if err != nil {
		t.Fatal(err)
	}
	c := pc.(*net.UDPConn)
	t.Cleanup(func() { c.Close() })
	return c
}
