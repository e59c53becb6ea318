package batchconn

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PacketInfoSpace is the OOB room one packet-info control message takes:
// IPV6_PKTINFO's, the larger of the two (40 bytes on 64-bit Linux). Give
// each received message at least this much OOB for [ParsePacketInfo] to
// find one, and expect [AppendPacketInfo] to append at most this much.
// Off Linux it is 0.
const PacketInfoSpace = (unix.SizeofCmsghdr + unix.SizeofInet6Pktinfo + int(unsafe.Sizeof(uintptr(0))) - 1) &^ (int(unsafe.Sizeof(uintptr(0))) - 1)

// AppendPacketInfo appends to b the control message that makes a datagram
// leave from the local address src, and through interface ifindex unless it
// is 0, and returns the extended slice: IP_PKTINFO (its ipi_spec_dst) for an
// IPv4 src, IPV6_PKTINFO for an IPv6 one. Put it in a [Message]'s OOB to
// answer a peer from the address its datagram arrived on (a "sticky"
// source), as a server on a wildcard address with several addresses must.
// Give the address of the socket's family: IPv4 for an AF_INET socket, IPv6
// (IPv4-mapped for IPv4 peers) for an AF_INET6 one, as [ParsePacketInfo]
// reports them. An invalid src appends nothing. The kernel refuses a source
// the host lacks (EINVAL, or ENETUNREACH for IPv4 on Linux 6.18) and an
// interface that does not exist (ENODEV), for that datagram alone (C11).
// Messages to one destination with identical OOB still share GSO sends.
// It allocates only when b lacks the room. Off Linux it returns b as it is.
func AppendPacketInfo(b []byte, src netip.Addr, ifindex uint32) []byte {
	switch {
	case src.Is4():
		// struct in_pktinfo: ipi_ifindex, ipi_spec_dst, ipi_addr.
		b, data := appendCmsg(b, unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo)
		binary.NativeEndian.PutUint32(data, ifindex)
		a := src.As4()
		copy(data[4:8], a[:])
		return b
	case src.Is6():
		// struct in6_pktinfo: ipi6_addr, ipi6_ifindex.
		b, data := appendCmsg(b, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
		a := src.As16()
		copy(data, a[:])
		binary.NativeEndian.PutUint32(data[16:], ifindex)
		return b
	}
	return b
}

// ParsePacketInfo returns the local address and the interface index that a
// received datagram's IP_PKTINFO or IPV6_PKTINFO control message in oob (a
// [Message]'s OOB[:NN]) gives, and whether there was one. For IPv4 the
// address is ipi_spec_dst, the one the kernel would answer from (the
// datagram's destination, for unicast). The kernel adds these control
// messages once asked to: IP_PKTINFO (IPv4 sockets) or IPV6_RECVPKTINFO
// (IPv6 and dual-stack ones, which report IPv4 datagrams with IPv4-mapped
// addresses) set to 1 with setsockopt, or SetControlMessage of
// golang.org/x/net/ipv4 or ipv6 on the Conn. It never allocates. Off Linux
// it finds nothing.
func ParsePacketInfo(oob []byte) (local netip.Addr, ifindex uint32, ok bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			info := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom4(info.Spec_dst), uint32(info.Ifindex), true
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			info := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom16(info.Addr), info.Ifindex, true
		}
		oob = rest
	}
	return netip.Addr{}, 0, false
}

// appendCmsg appends one zeroed control message of the given level, type
// and data length, and returns the extended slice and the message's data.
func appendCmsg(b []byte, level, typ int32, n int) ([]byte, []byte) {
	off := len(b)
	b = slices.Grow(b, unix.CmsgSpace(n))[:off+unix.CmsgSpace(n)] // no allocation when b has the room
	clear(b[off:])
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[off]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(n))
	return b, b[off+unix.CmsgLen(0) : off+unix.CmsgLen(n)]
}
