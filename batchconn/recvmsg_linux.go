//go:build batchconn_sendmsg

package batchconn

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvmsg makes one recvmsg(2) into s.m straight from the kernel ABI, so the
// per-message path allocates nothing on Linux, where it is tested.
func (s *recvState) recvmsg(fd uintptr) syscall.Errno {
	m := s.m
	s.iovs = s.iovs[:0]
	for _, b := range m.Buffers {
		if len(b) > 0 {
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			s.iovs = append(s.iovs, v)
		}
	}
	h := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.name)), Namelen: unix.SizeofSockaddrInet6}
	if len(s.iovs) > 0 {
		h.Iov = &s.iovs[0]
		h.SetIovlen(len(s.iovs))
	}
	if len(m.OOB) > 0 {
		h.Control = &m.OOB[0]
		h.SetControllen(len(m.OOB))
	}
	n, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&h)), uintptr(s.flags))
	if e != 0 {
		return e
	}
	s.n, s.oobn, s.rflags = int(n), int(h.Controllen), int(h.Flags)
	s.from = sourceOf(&s.name, h.Namelen, &s.c.zones)
	return 0
}
