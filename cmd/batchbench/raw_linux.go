package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSock is a non-blocking UDP socket the Go runtime's poller does not
// know, bound to an address and a port the kernel chose, with the message
// headers of its sendmmsg(2) or recvmmsg(2) calls built once, an iovec
// each.
type rawSock struct {
	fd    int
	local netip.AddrPort
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	pfd   [1]unix.PollFd // what mmsg waits for: POLLOUT or POLLIN
}

func newRawSock(local netip.Addr, n int, events int16) (*rawSock, error) {
	fd, addr, err := rawSocket(local)
	if err != nil {
		return nil, err
	}
	s := &rawSock{fd: fd, local: addr, hdrs: make([]unix.Mmsghdr, n), iovs: make([]unix.Iovec, n)}
	s.pfd[0] = unix.PollFd{Fd: int32(fd), Events: events}
	return s, nil
}

// set makes header i one message: buf, to or from name, with control data
// oob if any.
func (s *rawSock) set(i int, buf []byte, name *unix.RawSockaddrInet6, namelen uint32, oob []byte) {
	s.iovs[i].Base = &buf[0]
	s.iovs[i].SetLen(len(buf))
	h := &s.hdrs[i].Hdr
	h.Name, h.Namelen = (*byte)(unsafe.Pointer(name)), namelen
	h.Iov = &s.iovs[i]
	h.SetIovlen(1)
	if len(oob) > 0 {
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
}

// mmsg makes one sendmmsg or recvmmsg call (trap) with hdrs and returns the
// messages it sent or read. When the socket is full or empty (EAGAIN) it
// waits in poll(2), at most timeout milliseconds (-1: for good), and
// returns 0, as after EINTR: the caller calls again.
func (s *rawSock) mmsg(trap uintptr, hdrs []unix.Mmsghdr, timeout int) (int, error) {
	n, _, e := unix.Syscall6(trap, uintptr(s.fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), 0, 0, 0)
	switch e {
	case 0:
		return int(n), nil
	case unix.EAGAIN:
		if _, err := unix.Poll(s.pfd[:], timeout); err != nil && err != unix.EINTR {
			return 0, os.NewSyscallError("poll", err)
		}
		return 0, nil
	case unix.EINTR:
		return 0, nil
	}
	if trap == unix.SYS_RECVMMSG {
		return 0, os.NewSyscallError("recvmmsg", e)
	}
	return 0, os.NewSyscallError("sendmmsg", e)
}

func (s *rawSock) close() error { return unix.Close(s.fd) }

// rawSender is the ceiling: sendmmsg(2) through unix.Syscall6 on a rawSock,
// with every header built once up front. It still does what any correct
// sender must: it loops over partial sends and waits in poll(2) on EAGAIN.
// Nothing else.
type rawSender struct {
	*rawSock
	names []unix.RawSockaddrInet6 // one per destination; large enough for IPv4 too

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
	size, n := b.cfg.size, len(b.bufs)
	// The messages: [first datagram, end) of the batch each.
	var msgs [][2]int
	for i := 0; i < n; {
		j := i + 1
		for gso && j < n && b.destIdx[j] == b.destIdx[i] && j-i < b.segsPerGSO {
			j++
		}
		msgs = append(msgs, [2]int{i, j})
		i = j
	}
	rs, err := newRawSock(b.local, len(msgs), unix.POLLOUT)
	if err != nil {
		return nil, err
	}
	s := &rawSender{rawSock: rs, names: make([]unix.RawSockaddrInet6, len(b.rx.addrs))}
	namelen := make([]uint32, len(b.rx.addrs))
	for i, a := range b.rx.addrs {
		namelen[i] = putSockaddr(&s.names[i], a)
	}
	// With gso, one contiguous copy of the batch: the pre-coalesced buffers.
	var flat []byte
	for _, buf := range b.bufs {
		if gso {
			flat = append(flat, buf...)
		}
	}
	space := unix.CmsgSpace(2)
	oob := make([]byte, len(msgs)*space)
	for k, m := range msgs {
		d, buf, cmsg := b.destIdx[m[0]], b.bufs[m[0]], []byte(nil)
		if gso {
			buf = flat[m[0]*size : m[1]*size]
		}
		if m[1]-m[0] >= 2 {
			cmsg = oob[k*space : (k+1)*space]
			putSegmentCmsg(cmsg, size)
			s.gsoPerBatch++
		}
		s.set(k, buf, &s.names[d], namelen[d], cmsg)
	}
	return s, nil
}

func (s *rawSender) sendBatch() error {
	for off := 0; off < len(s.hdrs); {
		s.calls++
		n, err := s.mmsg(unix.SYS_SENDMMSG, s.hdrs[off:], -1)
		if err != nil {
			return err
		}
		off += n
	}
	s.gsoSends += s.gsoPerBatch
	return nil
}

func (s *rawSender) counters() (uint64, uint64) { return s.calls, s.gsoSends }

// rawSocket opens a non-blocking UDP socket bound to local, port 0, and
// returns it and its address.
func rawSocket(local netip.Addr) (int, netip.AddrPort, error) {
	var family int
	var sa unix.Sockaddr
	if local.Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: local.As4()}
	} else {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Addr: local.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, netip.AddrPort{}, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, netip.AddrPort{}, os.NewSyscallError("bind", err)
	}
	return fd, sockAddrPort(fd, local), nil
}

// sockAddrPort is fd's bound address: local and the port the kernel chose.
func sockAddrPort(fd int, local netip.Addr) netip.AddrPort {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(local, uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(local, uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// setRcvBuf asks for rcvBufBytes of receive buffer: SO_RCVBUFFORCE as root,
// else SO_RCVBUF, which net.core.rmem_max caps.
func setRcvBuf(fd int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBufBytes) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBufBytes)
	}
}

// sendmsg sends one datagram, buf with control data oob, from fd to dst,
// trying again after EINTR or EAGAIN.
func sendmsg(fd int, dst netip.AddrPort, buf, oob []byte) error {
	var name unix.RawSockaddrInet6
	var h unix.Msghdr
	h.Name, h.Namelen = (*byte)(unsafe.Pointer(&name)), putSockaddr(&name, dst)
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	h.Iov = &iov
	h.SetIovlen(1)
	if len(oob) > 0 {
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
	for {
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&h)), 0)
		switch e {
		case 0:
			return nil
		case unix.EINTR, unix.EAGAIN:
			continue
		}
		return os.NewSyscallError("sendmsg", e)
	}
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
	fd, _, err := rawSocket(b.local)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	oob := make([]byte, unix.CmsgSpace(2))
	putSegmentCmsg(oob, b.cfg.size)
	err = sendmsg(fd, b.rx.addrs[0], make([]byte, 2*b.cfg.size), oob)
	switch {
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EMSGSIZE):
		// Both are what the kernel says to a GSO segment larger than the
		// path MTU (which depends on the kernel's path); check that
		// before blaming the kernel.
		if mtu, ok := pathMTU(fd, b.rx.addrs[0]); ok {
			if err := segmentFits(b.cfg.size, mtu, b.cfg.ipv6); err != nil {
				return err
			}
		}
		return fmt.Errorf("a UDP GSO send of 2 x %d bytes failed with %v (no UDP_SEGMENT support on this kernel or path)", b.cfg.size, errors.Unwrap(err))
	case errors.Is(err, unix.EIO):
		return fmt.Errorf("a UDP GSO send of 2 x %d bytes failed with %v (the device has no checksum offload)", b.cfg.size, unix.EIO)
	case err != nil:
		return fmt.Errorf("a UDP GSO send failed: %w", err)
	}
	return nil
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
