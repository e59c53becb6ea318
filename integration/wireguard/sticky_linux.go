//go:build linux

package wgbatch

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

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

// parsePacketInfo returns the local address and interface index of the
// IP_PKTINFO or IPV6_PKTINFO control message in oob, or the zero Addr if
// there is none. For IPv4 the local address is ipi_spec_dst, the address
// the kernel would answer from (the header's destination for unicast).
func parsePacketInfo(oob []byte) (netip.Addr, uint32) {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			info := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom4(info.Spec_dst), uint32(info.Ifindex)
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			info := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom16(info.Addr), info.Ifindex
		}
		oob = rest
	}
	return netip.Addr{}, 0
}

// appendPacketInfo appends to b the control message that makes a datagram
// leave from src through interface ifindex (0: any): IP_PKTINFO with
// ipi_spec_dst for an IPv4 src, IPV6_PKTINFO for an IPv6 one.
func appendPacketInfo(b []byte, src netip.Addr, ifindex uint32) []byte {
	if src.Is4() {
		info := unix.Inet4Pktinfo{Ifindex: int32(ifindex), Spec_dst: src.As4()}
		return appendCmsg(b, unix.IPPROTO_IP, unix.IP_PKTINFO,
			unsafe.Slice((*byte)(unsafe.Pointer(&info)), unix.SizeofInet4Pktinfo))
	}
	info := unix.Inet6Pktinfo{Addr: src.As16(), Ifindex: ifindex}
	return appendCmsg(b, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO,
		unsafe.Slice((*byte)(unsafe.Pointer(&info)), unix.SizeofInet6Pktinfo))
}

func appendCmsg(b []byte, level, typ int32, data []byte) []byte {
	n := len(b)
	space := unix.CmsgSpace(len(data))
	b = append(b, make([]byte, space)...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[n]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[n+unix.CmsgLen(0):], data)
	return b
}

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
