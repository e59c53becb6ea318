//go:build unix && (!linux || batchconn_sendmsg)

package batchconn

import (
	"context"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// recvState holds a Conn's reusable receive state for the
// one-recvmsg-per-message path: Unix systems without recvmmsg, and Linux
// built with the batchconn_sendmsg tag (so this path is tested on a real
// kernel too).
type recvState struct {
	c    *Conn
	iovs []unix.Iovec
	name unix.RawSockaddrInet6

	// The system call in progress and its outcome.
	m               *Message
	flags           int
	wait            bool
	n, oobn, rflags int
	from            netip.AddrPort
	errno           syscall.Errno

	readFn  func(fd uintptr) bool
	readCtl func(fd uintptr) // readFn for RawConn.Control
}

func (s *recvState) init(c *Conn) {
	s.c = c
	s.readFn = s.read
	s.readCtl = func(fd uintptr) { s.read(fd) }
}

// recv receives one recvmsg(2) per message until the socket has nothing
// queued. Only the first may wait. The caller holds the read gate.
func (c *Conn) recv(ctx context.Context, msgs []Message, flags int, wait bool) (int, error) {
	s := &c.rx
	c.rd.ctx = ctx
	c.zones.tick()
	if err := c.rd.pending; err != nil {
		c.rd.pending = nil
		return 0, err
	}
	bytes := 0
	defer func() { s.m = nil }()
	for i := range msgs {
		m := &msgs[i]
		s.m, s.flags, s.wait = m, flags|unix.MSG_DONTWAIT, wait && i == 0
		s.errno = 0
		var err error
		if rerr := c.rawRead(s.readFn, s.readCtl, s.wait); rerr != nil {
			err = c.readError(c.waitErr(ctx, rerr))
		} else if s.errno == unix.EAGAIN {
			err = c.readError(ErrWouldBlock)
		} else if s.errno != 0 {
			err = c.readError(os.NewSyscallError("recvmsg", s.errno))
			if i > 0 {
				c.rd.pending = err // recvmsg took the error: the next call's (R9)
			}
		}
		if err != nil {
			c.rstats.messages.Add(uint64(i))
			c.rstats.bytes.Add(uint64(bytes))
			if i > 0 {
				return i, nil
			}
			return 0, err
		}
		m.N, m.NN, m.Flags, m.Addr = s.n, s.oobn, s.rflags, s.from
		bytes += s.n
	}
	c.rstats.messages.Add(uint64(len(msgs)))
	c.rstats.bytes.Add(uint64(bytes))
	return len(msgs), nil
}

// read is the RawConn.Read callback: one recvmsg. It returns false, to wait
// in the poller, only on EAGAIN in blocking mode.
func (s *recvState) read(fd uintptr) bool {
	for {
		errno := s.recvmsg(fd)
		s.c.rstats.syscalls.Add(1)
		switch errno {
		case 0:
			s.errno = 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if s.wait {
				s.c.rd.arm()
				return false
			}
		}
		s.errno = errno
		return true
	}
}
