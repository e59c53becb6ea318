//go:build unix && !linux

package batchconn

import (
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// recvmsg makes one recvmsg(2) into s.m through golang.org/x/sys/unix, the
// portable way on systems whose system calls go through libc. It allocates
// the source's sockaddr.
func (s *recvState) recvmsg(fd uintptr) syscall.Errno {
	m := s.m
	n, oobn, rflags, from, err := unix.RecvmsgBuffers(int(fd), m.Buffers, m.OOB, s.flags)
	if err != nil {
		if e, ok := err.(syscall.Errno); ok {
			return e
		}
		return unix.EINVAL
	}
	s.n, s.oobn, s.rflags = n, oobn, rflags
	switch sa := from.(type) {
	case *unix.SockaddrInet4:
		s.from = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			ip = ip.WithZone(s.c.zones.name(sa.ZoneId))
		}
		s.from = netip.AddrPortFrom(ip, uint16(sa.Port))
	default:
		s.from = netip.AddrPort{}
	}
	return 0
}
