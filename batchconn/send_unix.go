//go:build unix && (!linux || batchconn_sendmsg)

package batchconn

import (
	"context"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendState holds a Conn's reusable send state for the one-sendmsg-per-message
// path: Unix systems without sendmmsg, and Linux built with the
// batchconn_sendmsg tag (so this path is tested on a real kernel too).
type sendState struct {
	c       *Conn
	scratch []byte // gathers a multi-buffer datagram
	sa4     unix.SockaddrInet4
	sa6     unix.SockaddrInet6

	// The system call in progress and its outcome.
	buf, oob []byte
	to       unix.Sockaddr
	flags    int
	wait     bool
	sent     int
	errno    syscall.Errno

	writeFn, writableFn func(fd uintptr) bool
	writeCtl            func(fd uintptr) // writeFn for RawConn.Control
	pollfd              [1]unix.PollFd
}

func (s *sendState) init(c *Conn) {
	s.c = c
	s.writeFn = s.write
	s.writeCtl = func(fd uintptr) { s.write(fd) }
	s.writableFn = s.writable
}

// hostCmsg is this system's cmsghdr layout, as x/sys describes it.
var hostCmsg = cmsgLayout{
	lenSize: int(unsafe.Sizeof(unix.Cmsghdr{}.Len)),
	hdrLen:  unix.SizeofCmsghdr,
	align:   unix.CmsgSpace(1) - unix.CmsgSpace(0),
}

// msgDontwait is the per-call "don't wait" flag (C5, C11).
const msgDontwait = unix.MSG_DONTWAIT

// send sends msgs one sendmsg(2) each until all are accepted or one fails.
// The caller holds the write gate.
func (c *Conn) send(ctx context.Context, msgs []Message, flags int, wait bool) (int, error) {
	s := &c.tx
	defer s.release()
	c.ctx = ctx
	c.zones.tick()
	s.flags, s.wait = flags, wait
	for i := range msgs {
		m := &msgs[i]
		if err := checkMsg(m, hostCmsg); err != nil {
			return i, c.opError(&m.Addr, err)
		}
		s.to = nil
		if m.Addr != (netip.AddrPort{}) {
			ip, zone, err := checkDest(m.Addr, c.sock4, c.v6only, &c.zones)
			if err != nil {
				return i, c.opError(&m.Addr, err)
			}
			s.to = s.sockaddr(ip, m.Addr.Port(), zone)
		}
		s.buf, s.oob = gather(&s.scratch, m), m.OOB
		if err := c.rawWrite(s.writeFn, s.writeCtl, wait); err != nil {
			return i, c.opError(nil, c.waitErr(ctx, err))
		}
		switch s.errno {
		case 0:
		case unix.EAGAIN:
			return i, c.opError(nil, ErrWouldBlock)
		default:
			c.zones.failed(m.Addr.Addr().Zone())
			return i, c.opError(&m.Addr, os.NewSyscallError("sendmsg", s.errno))
		}
		m.N = s.sent
		c.stats.messages.Add(1)
		c.stats.bytes.Add(uint64(s.sent))
	}
	return len(msgs), nil
}

// release drops the references to the caller's buffer and control data
// (C9, C10), on every way out of send.
func (s *sendState) release() { s.buf, s.oob = nil, nil }

func (s *sendState) sockaddr(ip netip.Addr, port uint16, zone uint32) unix.Sockaddr {
	if s.c.sock4 {
		s.sa4 = unix.SockaddrInet4{Port: int(port), Addr: ip.As4()}
		return &s.sa4
	}
	s.sa6 = unix.SockaddrInet6{Port: int(port), ZoneId: zone, Addr: ip.As16()}
	return &s.sa6
}

// write is the RawConn.Write callback: one sendmsg. It returns false, to
// wait in the poller, only on EAGAIN in blocking mode.
func (s *sendState) write(fd uintptr) bool {
	for {
		n, err := unix.SendmsgN(int(fd), s.buf, s.oob, s.to, s.flags)
		s.c.stats.syscalls.Add(1)
		errno, _ := err.(syscall.Errno)
		if err != nil && errno == 0 {
			errno = unix.EINVAL // a sockaddr the unix package refused
		}
		switch errno {
		case 0:
			s.sent, s.errno = n, 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if s.wait {
				s.c.arm()
				return false
			}
		}
		s.sent, s.errno = 0, errno
		return true
	}
}

// writable is the RawConn.Write callback of WaitWritable.
func (s *sendState) writable(fd uintptr) bool {
	if pollWritable(&s.pollfd, fd) {
		return true
	}
	s.c.arm()
	return false
}
