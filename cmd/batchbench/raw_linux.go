package main

import (
	"fmt"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSender is the ceiling: sendmmsg(2) through unix.Syscall6 on a socket the
// Go runtime's poller does not know, with every header built once up front.
// It still does what any correct sender must: it loops over partial sends and
// waits in poll(2) on EAGAIN. Nothing else.
type rawSender struct {
	fd    int
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // one per destination; large enough for IPv4 too
	oob   []byte
	pfd   [1]unix.PollFd

	calls       uint64
	gsoSends    uint64
	gsoPerBatch uint64
}

// newRawSender builds the batch's headers. Without gso, one header per
// datagram. With gso, each run of datagrams to one destination is one
// contiguous buffer sent as one message with a UDP_SEGMENT control message,
// split at b.segsPerGSO datagrams; all of a batch's messages go in one
// sendmmsg call.
func newRawSender(b *sendBench, gso bool) (*rawSender, error) {
	fd, err := rawSocket(b.local)
	if err != nil {
		return nil, err
	}
	s := &rawSender{fd: fd}
	s.pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
	s.names = make([]unix.RawSockaddrInet6, len(b.rx.addrs))
	namelen := make([]uint32, len(b.rx.addrs))
	for i, a := range b.rx.addrs {
		namelen[i] = putSockaddr(&s.names[i], a)
	}

	size := b.cfg.size
	if !gso {
		s.iovs = make([]unix.Iovec, len(b.bufs))
		s.hdrs = make([]unix.Mmsghdr, len(b.bufs))
		for i, buf := range b.bufs {
			s.iovs[i].Base = &buf[0]
			s.iovs[i].SetLen(len(buf))
			h := &s.hdrs[i].Hdr
			h.Name = (*byte)(unsafe.Pointer(&s.names[b.destIdx[i]]))
			h.Namelen = namelen[b.destIdx[i]]
			h.Iov = &s.iovs[i]
			h.SetIovlen(1)
		}
		return s, nil
	}

	// One contiguous copy of the batch: the pre-coalesced buffers.
	flat := make([]byte, 0, len(b.bufs)*size)
	for _, buf := range b.bufs {
		flat = append(flat, buf...)
	}
	space := unix.CmsgSpace(2)
	for i := 0; i < len(b.bufs); {
		j := i + 1
		for j < len(b.bufs) && b.destIdx[j] == b.destIdx[i] && j-i < b.segsPerGSO {
			j++
		}
		s.iovs = append(s.iovs, unix.Iovec{Base: &flat[i*size]})
		s.iovs[len(s.iovs)-1].SetLen((j - i) * size)
		if j-i >= 2 {
			s.gsoPerBatch++
		}
		s.hdrs = append(s.hdrs, unix.Mmsghdr{})
		i = j
	}
	s.oob = make([]byte, len(s.hdrs)*space)
	i, k := 0, 0
	for i < len(b.bufs) {
		n := int(s.iovs[k].Len) / size
		h := &s.hdrs[k].Hdr
		h.Name = (*byte)(unsafe.Pointer(&s.names[b.destIdx[i]]))
		h.Namelen = namelen[b.destIdx[i]]
		h.Iov = &s.iovs[k]
		h.SetIovlen(1)
		if n >= 2 {
			oob := s.oob[k*space : (k+1)*space]
			putSegmentCmsg(oob, size)
			h.Control = &oob[0]
			h.SetControllen(len(oob))
		}
		i += n
		k++
	}
	return s, nil
}

func (s *rawSender) sendBatch() error {
	for off := 0; off < len(s.hdrs); {
		s.calls++
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd),
			uintptr(unsafe.Pointer(&s.hdrs[off])), uintptr(len(s.hdrs)-off), 0, 0, 0)
		switch e {
		case 0:
			off += int(r)
		case unix.EAGAIN:
			if err := s.waitWritable(); err != nil {
				return err
			}
		case unix.EINTR:
		default:
			return os.NewSyscallError("sendmmsg", e)
		}
	}
	s.gsoSends += s.gsoPerBatch
	return nil
}

func (s *rawSender) waitWritable() error {
	for {
		_, err := unix.Poll(s.pfd[:], -1)
		if err == nil {
			return nil
		}
		if err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
	}
}

func (s *rawSender) counters() (uint64, uint64) { return s.calls, s.gsoSends }
func (s *rawSender) close() error               { return unix.Close(s.fd) }

// rawSocket opens a non-blocking UDP socket bound to local, port 0.
func rawSocket(local netip.Addr) (int, error) {
	var family int
	var sa unix.Sockaddr
	if local.Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: local.As4()}
	} else {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Addr: local.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	return fd, nil
}

// putSockaddr writes a into sa as a sockaddr_in or sockaddr_in6 and returns its length.
func putSockaddr(sa *unix.RawSockaddrInet6, a netip.AddrPort) uint32 {
	*sa = unix.RawSockaddrInet6{}
	port := (*[2]byte)(unsafe.Pointer(&sa.Port)) // same offset in sockaddr_in; network byte order
	port[0], port[1] = byte(a.Port()>>8), byte(a.Port())
	if a.Addr().Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Addr = a.Addr().As4()
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	sa.Addr = a.Addr().As16()
	return unix.SizeofSockaddrInet6
}

// putSegmentCmsg writes a UDP_SEGMENT control message (a u16 segment size) into oob.
func putSegmentCmsg(oob []byte, size int) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&oob[unix.CmsgLen(0)])) = uint16(size)
}

// probeGSO sends two datagrams to the first receiver as one UDP GSO message.
func probeGSO(b *sendBench) error {
	fd, err := rawSocket(b.local)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var name unix.RawSockaddrInet6
	namelen := putSockaddr(&name, b.rx.addrs[0])
	buf := make([]byte, 2*b.cfg.size)
	oob := make([]byte, unix.CmsgSpace(2))
	putSegmentCmsg(oob, b.cfg.size)
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	var h unix.Msghdr
	h.Name, h.Namelen = (*byte)(unsafe.Pointer(&name)), namelen
	h.Iov = &iov
	h.SetIovlen(1)
	h.Control = &oob[0]
	h.SetControllen(len(oob))
	for {
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&h)), 0)
		switch e {
		case 0:
			return nil
		case unix.EINTR, unix.EAGAIN:
			continue
		case unix.EINVAL, unix.EMSGSIZE:
			// Both are what the kernel says to a GSO segment larger than
			// the path MTU (which depends on the kernel's path); check
			// that before blaming the kernel.
			if mtu, ok := pathMTU(fd, b.rx.addrs[0]); ok {
				if err := segmentFits(b.cfg.size, mtu, b.cfg.ipv6); err != nil {
					return err
				}
			}
			return fmt.Errorf("a UDP GSO send of 2 x %d bytes failed with %v (no UDP_SEGMENT support on this kernel or path)", b.cfg.size, e)
		case unix.EIO:
			return fmt.Errorf("a UDP GSO send of 2 x %d bytes failed with %v (the device has no checksum offload)", b.cfg.size, e)
		default:
			return fmt.Errorf("a UDP GSO send failed: %w", os.NewSyscallError("sendmsg", e))
		}
	}
}

// pathMTU connects fd to dst and asks the kernel for the route's MTU
// (IP_MTU or IPV6_MTU, which need a connected socket).
func pathMTU(fd int, dst netip.AddrPort) (int, bool) {
	var sa unix.Sockaddr
	level, opt := unix.IPPROTO_IP, unix.IP_MTU
	if dst.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(dst.Port()), Addr: dst.Addr().As16()}
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_MTU
	}
	if unix.Connect(fd, sa) != nil {
		return 0, false
	}
	mtu, err := unix.GetsockoptInt(fd, level, opt)
	return mtu, err == nil && mtu > 0
}
