//go:build unix

package batchconn

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sourceOf decodes the sockaddr the kernel stored at sa (namelen bytes) into
// the address [net.UDPConn.ReadMsgUDPAddrPort] would report: IPv4 on an
// AF_INET socket, IPv6 (IPv4-mapped for IPv4 peers of a dual-stack socket)
// with the zone named as the net package names it (see zoneTable). No
// allocation, except when the Conn meets an interface it does not know.
func sourceOf(sa *unix.RawSockaddrInet6, namelen uint32, zones *zoneTable) netip.AddrPort {
	if namelen < unix.SizeofSockaddrInet4 {
		return netip.AddrPort{}
	}
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(&sa4.Port))
	case unix.AF_INET6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			ip = ip.WithZone(zones.name(sa.Scope_id))
		}
		return netip.AddrPortFrom(ip, port(&sa.Port))
	}
	return netip.AddrPort{}
}

// port reads a port stored in network byte order.
func port(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}
