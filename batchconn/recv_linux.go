//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"context"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvState holds a Conn's reusable receive state. Only the holder of the
// Conn's read gate touches it, so one set serves every call without
// allocating.
type recvState struct {
	c     *Conn
	hdrs  []mmsghdr
	names []unix.RawSockaddrInet6
	iovs  []unix.Iovec
	zones zoneCache

	// GRO: the kernel fills the Conn's own slots, allocated at the first
	// read, and the splitter copies datagrams out of them.
	slots []byte
	ctrl  []byte
	slotv []unix.Iovec // one per slot

	// The system call in progress: hdrs[:nh] with flags; its outcome.
	nh, flags int
	wait      bool
	got       int
	errno     syscall.Errno

	readFn func(fd uintptr) bool // the RawConn.Read callback, bound once
}

func (s *recvState) init(c *Conn) {
	s.c = c
	s.readFn = s.read
}

// recv receives into msgs. The caller holds the read gate.
func (c *Conn) recv(ctx context.Context, msgs []Message, flags int, wait bool) (int, error) {
	c.rd.ctx = ctx
	if c.gro {
		return c.recvGRO(ctx, msgs, flags, wait)
	}
	if err := c.rd.pending; err != nil {
		c.rd.pending = nil
		return 0, err
	}
	s := &c.rx
	s.build(msgs)
	if err := c.recvBatch(ctx, len(msgs), flags, wait); err != nil {
		return 0, err
	}
	bytes := 0
	for i := range s.got {
		h, m := &s.hdrs[i], &msgs[i]
		m.N = int(h.len)
		m.NN = int(h.hdr.Controllen)
		m.Flags = int(h.hdr.Flags)
		m.Addr = sourceOf(&s.names[i], h.hdr.Namelen, &s.zones)
		bytes += m.N
	}
	c.rstats.messages.Add(uint64(s.got))
	c.rstats.bytes.Add(uint64(bytes))
	return s.got, nil
}

// recvBatch makes one recvmmsg(2) of hdrs[:nh], waiting in the poller first
// if asked and nothing is queued, and returns the error for a call that
// received nothing.
func (c *Conn) recvBatch(ctx context.Context, nh, flags int, wait bool) error {
	s := &c.rx
	s.got, s.errno = 0, 0
	// Go's sockets are non-blocking already; MSG_DONTWAIT keeps a socket
	// made blocking behind the Conn's back from blocking the thread.
	s.nh, s.flags, s.wait = nh, flags|unix.MSG_DONTWAIT, wait
	if err := c.rc.Read(s.readFn); err != nil {
		return c.readError(c.waitErr(ctx, err))
	}
	switch s.errno {
	case 0:
		return nil
	case unix.EAGAIN:
		return c.readError(ErrWouldBlock)
	}
	return c.readError(os.NewSyscallError("recvmmsg", s.errno))
}

// build points one header at each message's buffers, control room and a
// sockaddr slot.
func (s *recvState) build(msgs []Message) {
	nbuf := 0
	for i := range msgs {
		nbuf += len(msgs[i].Buffers)
	}
	s.grow(len(msgs))
	if cap(s.iovs) < nbuf {
		s.iovs = make([]unix.Iovec, 0, nbuf)
	}
	s.iovs = s.iovs[:0]
	for i := range msgs {
		m := &msgs[i]
		h := &s.hdrs[i]
		h.hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.names[i])), Namelen: unix.SizeofSockaddrInet6}
		h.len = 0
		iov0 := len(s.iovs)
		for _, b := range m.Buffers {
			if len(b) > 0 {
				v := unix.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				s.iovs = append(s.iovs, v)
			}
		}
		if k := len(s.iovs) - iov0; k > 0 {
			h.hdr.Iov = &s.iovs[iov0]
			h.hdr.SetIovlen(k)
		}
		if len(m.OOB) > 0 {
			h.hdr.Control = &m.OOB[0]
			h.hdr.SetControllen(len(m.OOB))
		}
	}
}

// grow makes room for n headers and sockaddrs.
func (s *recvState) grow(n int) {
	if cap(s.hdrs) < n {
		s.hdrs = make([]mmsghdr, n)
	}
	if cap(s.names) < n {
		s.names = make([]unix.RawSockaddrInet6, n)
	}
	s.hdrs, s.names = s.hdrs[:cap(s.hdrs)], s.names[:cap(s.names)]
}

// recvGRO receives through the Conn's 64 KiB slots, splitting what the
// kernel coalesced: datagrams left over from earlier calls first, then, if
// msgs has room, what the socket holds.
func (c *Conn) recvGRO(ctx context.Context, msgs []Message, flags int, wait bool) (int, error) {
	r, s := &c.rd, &c.rx
	n := 0
	if !r.q.empty() {
		if r.expired() {
			return 0, c.readError(os.ErrDeadlineExceeded)
		}
		if flags&unix.MSG_PEEK != 0 {
			// Peek at the queue only: reading the socket would reuse the
			// slots the queued datagrams sit in.
			head, off := r.q.head, r.q.off
			n = c.serve(msgs, flags)
			r.q.head, r.q.off = head, off
			return n, nil
		}
		n = c.serve(msgs, flags)
	}
	if n == 0 && r.pending != nil {
		err := r.pending
		r.pending = nil
		return 0, err
	}
	for n < len(msgs) {
		r.q.reset() // everything queued was handed out: the slots are free
		// Every slot, even for one message: what does not fit stays
		// queued, and a single-datagram read loop needs one system call
		// per slots' worth instead of one per datagram.
		k := s.buildSlots()
		if err := c.recvBatch(ctx, k, flags, wait && n == 0); err != nil {
			if n == 0 {
				return 0, err
			}
			if s.errno != 0 && s.errno != unix.EAGAIN {
				r.pending = err // the kernel's error is the next call's (R9)
			}
			break
		}
		coalesced := s.queue()
		if s.got == k && !coalesced && len(msgs)-n > k {
			s.growSlots() // plain datagrams filled every slot with room to spare
		}
		n += c.serve(msgs[n:], flags)
		if flags&unix.MSG_PEEK != 0 {
			r.q.reset() // the datagrams stay in the socket
			break
		}
		if s.got < k {
			break // the socket is drained
		}
	}
	return n, nil
}

// serve hands out queued datagrams into msgs and returns how many.
func (c *Conn) serve(msgs []Message, flags int) int {
	q := &c.rd.q
	n, bytes := 0, 0
	for n < len(msgs) && !q.empty() {
		bytes += q.next(&msgs[n], flags)
		n++
	}
	c.rstats.messages.Add(uint64(n))
	c.rstats.bytes.Add(uint64(bytes))
	return n
}

// buildSlots points a header at each GRO slot and returns how many.
func (s *recvState) buildSlots() int {
	if s.slots == nil {
		s.allocSlots(groSlots)
	}
	k := len(s.slotv)
	s.grow(k)
	for i := range k {
		h := &s.hdrs[i]
		h.hdr = unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&s.names[i])),
			Namelen: unix.SizeofSockaddrInet6,
			Iov:     &s.slotv[i],
			Control: &s.ctrl[i*groCtrl],
		}
		h.hdr.SetIovlen(1)
		h.hdr.SetControllen(groCtrl)
		h.len = 0
	}
	return k
}

// allocSlots gives the Conn k fresh slots. Datagrams still queued keep the
// old ones alive until they are handed out.
func (s *recvState) allocSlots(k int) {
	s.slots = make([]byte, k*groSlot)
	s.ctrl = make([]byte, k*groCtrl)
	s.slotv = make([]unix.Iovec, k)
	for i := range s.slotv {
		s.slotv[i] = unix.Iovec{Base: &s.slots[i*groSlot]}
		s.slotv[i].SetLen(groSlot)
	}
}

// growSlots doubles the slots, up to groMaxSlots.
func (s *recvState) growSlots() {
	if k := len(s.slotv); k < groMaxSlots {
		s.allocSlots(min(2*k, groMaxSlots))
	}
}

// queue adds the s.got buffers the kernel filled to the Conn's queue, and
// reports whether any was coalesced.
func (s *recvState) queue() (coalesced bool) {
	c := s.c
	q := &c.rd.q
	if cap(q.bufs) < len(s.slotv) {
		q.bufs = append(make([]groBuf, 0, len(s.slotv)), q.bufs...)
	}
	for i := range s.got {
		h := &s.hdrs[i]
		size := min(int(h.len), groSlot)
		seg, oob := cutGRO(s.ctrl[i*groCtrl : i*groCtrl+int(h.hdr.Controllen)])
		if seg > 0 && size > seg {
			coalesced = true
			c.rstats.groBuffers.Add(1)
			c.rstats.groMessages.Add(uint64((size + seg - 1) / seg))
		}
		q.bufs = append(q.bufs, groBuf{
			data:  s.slots[i*groSlot : i*groSlot+size],
			seg:   seg,
			addr:  sourceOf(&s.names[i], h.hdr.Namelen, &s.zones),
			oob:   oob,
			flags: int(h.hdr.Flags),
		})
	}
	return coalesced
}

// recvmmsgFunc is the signature of the recvmmsg seam.
type recvmmsgFunc = func(fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno)

// recvmmsg is the seam between the receive logic and the kernel; tests
// replace it to produce what the kernel cannot be made to produce on demand.
var recvmmsg recvmmsgFunc = func(fd uintptr, hdrs []mmsghdr, flags int) (int, syscall.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), uintptr(flags), 0, 0)
	return int(n), e
}

// read is the RawConn.Read callback: one recvmmsg of hdrs[:nh]. It returns
// false, to wait in the poller, only on EAGAIN in blocking mode.
func (s *recvState) read(fd uintptr) bool {
	for {
		n, errno := recvmmsg(fd, s.hdrs[:s.nh], s.flags)
		s.c.rstats.syscalls.Add(1)
		switch errno {
		case 0:
			s.got, s.errno = n, 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if s.wait {
				s.c.rd.arm()
				return false
			}
		}
		s.got, s.errno = 0, errno
		return true
	}
}
