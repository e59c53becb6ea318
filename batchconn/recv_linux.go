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
	hdrs  []unix.Mmsghdr
	names []unix.RawSockaddrInet6
	iovs  []unix.Iovec

	// GRO: the kernel fills the Conn's own slots, allocated at the first
	// read, and the splitter copies datagrams out of them.
	slots    []byte
	ctrl     []byte
	ctrlRoom int          // control room per slot (see groCtrl)
	slotv    []unix.Iovec // one per slot

	// direct says the last call met no coalesced buffer: the next one lets
	// the kernel write into the callers' buffers first, with the rest of
	// a slot behind them (room[i] bytes of the caller's, then the slot
	// from offset room[i]), so plain datagrams need no copy.
	direct bool
	room   []int

	// The system call in progress: hdrs[:nh] with flags; its outcome.
	nh, flags int
	wait      bool
	got       int
	errno     syscall.Errno

	// The Conn's own control room for recvPlain with reply sources on,
	// and where each message's part starts.
	pctrl    []byte
	pctrlOff []int

	readFn  func(fd uintptr) bool // the RawConn.Read callback, bound once
	readCtl func(fd uintptr)      // readFn for RawConn.Control

	// checkFlags' system call, its callback bound once.
	probeFlags int
	probeErrno syscall.Errno
	probeFn    func(fd uintptr)
}

func (s *recvState) init(c *Conn) {
	s.c = c
	s.readFn = s.read
	s.readCtl = func(fd uintptr) { s.read(fd) }
	s.probeFn = s.probe
}

// recv receives into msgs. The caller holds the read gate.
func (c *Conn) recv(ctx context.Context, msgs []Message, flags int, wait bool) (int, error) {
	c.rd.ctx = ctx
	c.zones.tick()
	switch {
	case flags&unix.MSG_ERRQUEUE != 0:
		// The socket's error queue. What it holds is never coalesced
		// (ip_recv_error adds no UDP_GRO message), so with GRO on too it
		// is read straight into msgs, as with GRO off; the datagrams the
		// Conn holds, its slots, and an error kept for the next read of
		// data are not the error queue's, and are left as they are.
		return c.recvPlain(ctx, msgs, flags, wait)
	case c.gro:
		return c.recvGRO(ctx, msgs, flags, wait)
	}
	if err := c.rd.pending; err != nil {
		c.rd.pending = nil
		return 0, err
	}
	return c.recvPlain(ctx, msgs, flags, wait)
}

// recvPlain receives into msgs with one recvmmsg(2), straight into their
// buffers and control room: the whole read path with GRO off.
//
// With reply sources on (WithReplySource), each datagram's control
// messages tell its local address; unless the user asked for the
// packet-info message too, the kernel stores them into the Conn's own room
// first (the caller's room and the message's), and they are laid out in
// the caller's OOB without it, as the kernel would have stored them there.
func (c *Conn) recvPlain(ctx context.Context, msgs []Message, flags int, wait bool) (int, error) {
	s, r := &c.rx, c.reply
	own := r != nil && !r.user.Load()
	s.build(msgs, own)
	if err := c.recvBatch(ctx, len(msgs), flags, wait); err != nil {
		return 0, c.readError(err)
	}
	bytes := 0
	for i := range s.got {
		h, m := &s.hdrs[i], &msgs[i]
		m.N = int(h.Len)
		m.NN = int(h.Hdr.Controllen)
		m.Flags = int(h.Hdr.Flags)
		m.Addr = sourceOf(&s.names[i], h.Hdr.Namelen, &s.c.zones)
		bytes += m.N
		if r == nil {
			continue
		}
		oob := m.OOB[:min(m.NN, len(m.OOB))]
		if own {
			oob = s.pctrl[s.pctrlOff[i] : s.pctrlOff[i]+m.NN]
		}
		if flags&unix.MSG_ERRQUEUE == 0 {
			if local, ifindex, ok := ParsePacketInfo(oob); ok {
				r.table.learn(m.Addr, local, ifindex)
			}
		}
		if own {
			var ctrunc bool
			m.NN, ctrunc = putCmsgs(m.OOB, cutCmsg(oob, r.level, r.typ))
			if ctrunc {
				m.Flags |= msgCtrunc
			}
		}
	}
	c.rstats.messages.Add(uint64(s.got))
	c.rstats.bytes.Add(uint64(bytes))
	return s.got, nil
}

// recvBatch makes one recvmmsg(2) of hdrs[:nh], waiting in the poller first
// if asked and nothing is queued, and returns the error for a call that
// received nothing, not yet wrapped: a GRO read that already served
// datagrams drops it, and must not pay an allocation for that.
func (c *Conn) recvBatch(ctx context.Context, nh, flags int, wait bool) error {
	s := &c.rx
	s.got, s.errno = 0, 0
	// Go's sockets are non-blocking already; MSG_DONTWAIT keeps a socket
	// made blocking behind the Conn's back from blocking the thread.
	s.nh, s.flags, s.wait = nh, flags|unix.MSG_DONTWAIT, wait
	if err := c.rawRead(s.readFn, s.readCtl, s.wait); err != nil {
		return c.waitErr(ctx, err)
	}
	switch s.errno {
	case 0:
		return nil
	case unix.EAGAIN:
		return ErrWouldBlock
	}
	return os.NewSyscallError("recvmmsg", s.errno)
}

// build points one header at each message's buffers, control room and a
// sockaddr slot; with own, at control room of the Conn's own instead:
// each message's room and PacketInfoSpace more (see recvPlain).
func (s *recvState) build(msgs []Message, own bool) {
	nbuf, nctrl := 0, 0
	for i := range msgs {
		nbuf += len(msgs[i].Buffers)
		nctrl += cmsgAlignUp(len(msgs[i].OOB)) + PacketInfoSpace
	}
	if own {
		if cap(s.pctrl) < nctrl {
			s.pctrl = make([]byte, nctrl)
		}
		if cap(s.pctrlOff) < len(msgs) {
			s.pctrlOff = make([]int, len(msgs))
		}
		s.pctrl, s.pctrlOff = s.pctrl[:nctrl], s.pctrlOff[:len(msgs)]
	}
	s.grow(len(msgs))
	if cap(s.iovs) < nbuf {
		s.iovs = make([]unix.Iovec, 0, nbuf)
	}
	s.iovs = s.iovs[:0]
	for i := range msgs {
		m := &msgs[i]
		h := &s.hdrs[i]
		h.Hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.names[i])), Namelen: unix.SizeofSockaddrInet6}
		h.Len = 0
		iov0 := len(s.iovs)
		for _, b := range m.Buffers {
			if len(b) > 0 {
				v := unix.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				s.iovs = append(s.iovs, v)
			}
		}
		if k := len(s.iovs) - iov0; k > 0 {
			h.Hdr.Iov = &s.iovs[iov0]
			h.Hdr.SetIovlen(k)
		}
		switch {
		case own:
			room := cmsgAlignUp(len(m.OOB)) + PacketInfoSpace
			off := 0
			if i > 0 {
				off = s.pctrlOff[i-1] + cmsgAlignUp(len(msgs[i-1].OOB)) + PacketInfoSpace
			}
			s.pctrlOff[i] = off
			h.Hdr.Control = &s.pctrl[off]
			h.Hdr.SetControllen(room)
		case len(m.OOB) > 0:
			h.Hdr.Control = &m.OOB[0]
			h.Hdr.SetControllen(len(m.OOB))
		}
	}
}

// grow makes room for n headers and sockaddrs.
func (s *recvState) grow(n int) {
	if cap(s.hdrs) < n {
		s.hdrs = make([]unix.Mmsghdr, n)
	}
	if cap(s.names) < n {
		s.names = make([]unix.RawSockaddrInet6, n)
	}
	s.hdrs, s.names = s.hdrs[:cap(s.hdrs)], s.names[:cap(s.names)]
}

// groQueueFlags are the read flags the Conn's queue serves as the kernel
// would have served the same datagrams with GRO off: MSG_PEEK (it leaves
// them queued), MSG_TRUNC (N is the real length), MSG_CMSG_CLOEXEC (copied
// into Flags), and the waiting flags. Linux ignores the rest on a UDP read,
// except MSG_ERRQUEUE (recv) and MSG_CMSG_COMPAT (EINVAL); checkFlags asks
// the kernel about them, so a flag a later kernel refuses is refused too.
const groQueueFlags = unix.MSG_PEEK | unix.MSG_TRUNC | unix.MSG_CMSG_CLOEXEC | unix.MSG_DONTWAIT | unix.MSG_WAITFORONE

// recvGRO receives through the Conn's 64 KiB slots, splitting what the
// kernel coalesced: datagrams left over from earlier calls first, then, if
// msgs has room, what the socket holds.
func (c *Conn) recvGRO(ctx context.Context, msgs []Message, flags int, wait bool) (int, error) {
	r, s := &c.rd, &c.rx
	s.fitCtrl(msgs)
	n := 0
	if !r.q.empty() {
		if r.expired() {
			return 0, c.readError(os.ErrDeadlineExceeded)
		}
		if flags&^groQueueFlags != 0 {
			if err := c.checkFlags(flags); err != nil {
				return 0, c.readError(err)
			}
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
		// per slots' worth instead of one per datagram. After a call
		// that met no coalesced buffer, a call with a message for every
		// slot reads straight into the messages (readDirect).
		room := len(msgs) - n
		direct := s.direct && flags&unix.MSG_PEEK == 0 && room >= s.slotCount()
		var k int
		if direct {
			k = s.buildDirect(msgs[n:])
			direct = k > 0
		}
		if !direct {
			k = s.buildSlots()
			if flags&unix.MSG_PEEK != 0 {
				k = 1 // every header would peek at the same datagram
			}
		}
		if err := c.recvBatch(ctx, k, flags, wait && n == 0); err != nil {
			if n == 0 {
				return 0, c.readError(err)
			}
			if s.errno != 0 && s.errno != unix.EAGAIN {
				r.pending = c.readError(err) // the kernel's error is the next call's (R9)
			}
			break
		}
		var coalesced bool
		if direct {
			var d int
			d, coalesced = s.readDirect(msgs[n:], flags)
			n += d
		} else {
			coalesced = s.queue(0)
		}
		s.direct = !coalesced
		if s.got == k && !coalesced && room > k {
			// Plain datagrams filled every slot and the call had room for
			// more: more slots mean fewer system calls.
			s.growSlots()
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

// checkFlags asks the kernel whether it refuses a read with flags, before
// datagrams the Conn holds are handed out under flags it does not know
// (groQueueFlags): GRO off, the read of those datagrams would have met the
// kernel's verdict. The question is a recvmsg(2) of nothing that peeks and
// does not wait, so it takes nothing from the socket.
func (c *Conn) checkFlags(flags int) error {
	s := &c.rx
	s.probeFlags = flags
	if err := c.rc.Control(s.probeFn); err != nil {
		return err
	}
	switch s.probeErrno {
	case 0, unix.EAGAIN:
		return nil
	}
	return os.NewSyscallError("recvmmsg", s.probeErrno)
}

// probe is checkFlags' RawConn.Control callback.
func (s *recvState) probe(fd uintptr) {
	var h unix.Msghdr
	for {
		_, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&h)), uintptr(s.probeFlags|unix.MSG_PEEK|unix.MSG_DONTWAIT))
		s.c.rstats.syscalls.Add(1)
		if e != unix.EINTR {
			s.probeErrno = e
			return
		}
	}
}

// fitCtrl gives every slot the control room for the largest OOB in msgs
// (see groCtrl). It allocates only when a call offers more than every call
// before it.
func (s *recvState) fitCtrl(msgs []Message) {
	oob := groCtrl
	for i := range msgs {
		oob = max(oob, len(msgs[i].OOB))
	}
	room := cmsgAlignUp(min(oob, groMaxCtrl)) + groCmsgSpace
	if s.c.reply != nil {
		room += PacketInfoSpace // the packet-info message the Conn asked for
	}
	if room <= s.ctrlRoom {
		return
	}
	s.ctrlRoom = room
	if s.slots != nil {
		// Datagrams still queued keep the old room alive until they are
		// handed out.
		s.ctrl = make([]byte, len(s.slotv)*room)
	}
}

// slotCount returns how many GRO slots the Conn has, allocating the first
// ones.
func (s *recvState) slotCount() int {
	if s.slots == nil {
		s.allocSlots(groSlots)
	}
	return len(s.slotv)
}

// buildSlots points a header at each GRO slot and returns how many.
func (s *recvState) buildSlots() int {
	k := s.slotCount()
	s.grow(k)
	for i := range k {
		h := &s.hdrs[i]
		h.Hdr = unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&s.names[i])),
			Namelen: unix.SizeofSockaddrInet6,
			Iov:     &s.slotv[i],
			Control: &s.ctrl[i*s.ctrlRoom],
		}
		h.Hdr.SetIovlen(1)
		h.Hdr.SetControllen(s.ctrlRoom)
		h.Len = 0
	}
	return k
}

// allocSlots gives the Conn k fresh slots. Datagrams still queued keep the
// old ones alive until they are handed out. It also makes the headers, and
// what buildDirect needs for messages of one buffer each, k long: the first
// call to read through the new slots, into the slots or straight into the
// messages, then allocates nothing either.
func (s *recvState) allocSlots(k int) {
	s.slots = make([]byte, k*groSlot)
	if s.ctrlRoom == 0 {
		s.ctrlRoom = groCtrl + groCmsgSpace
	}
	s.ctrl = make([]byte, k*s.ctrlRoom)
	s.slotv = make([]unix.Iovec, k)
	for i := range s.slotv {
		s.slotv[i] = unix.Iovec{Base: &s.slots[i*groSlot]}
		s.slotv[i].SetLen(groSlot)
	}
	s.grow(k)
	if cap(s.room) < k {
		s.room = make([]int, k)
	}
	if cap(s.iovs) < 2*k {
		s.iovs = make([]unix.Iovec, 0, 2*k)
	}
}

// growSlots doubles the slots, up to groMaxSlots.
func (s *recvState) growSlots() {
	if k := len(s.slotv); k < groMaxSlots {
		s.allocSlots(min(2*k, groMaxSlots))
	}
}

// queue adds the buffers the kernel filled in slots from to s.got to the
// Conn's queue, and reports whether any was coalesced.
func (s *recvState) queue(from int) (coalesced bool) {
	for i := from; i < s.got; i++ {
		h := &s.hdrs[i]
		seg, oob := cutGRO(s.ctrl[i*s.ctrlRoom : i*s.ctrlRoom+int(h.Hdr.Controllen)])
		if s.queueBuf(i, seg, oob) {
			coalesced = true
		}
	}
	return coalesced
}

// queueBuf adds the buffer in slot i, its UDP_GRO control message already
// cut (cutGRO works in place, so only once), to the Conn's queue, and
// reports whether it was coalesced.
func (s *recvState) queueBuf(i, seg int, oob []byte) (coalesced bool) {
	c := s.c
	q := &c.rd.q
	if cap(q.bufs) < len(s.slotv) {
		q.bufs = append(make([]groBuf, 0, len(s.slotv)), q.bufs...)
	}
	h := &s.hdrs[i]
	size := min(int(h.Len), groSlot)
	if seg > 0 && size > seg {
		coalesced = true
		c.rstats.groBuffers.Add(1)
		c.rstats.groMessages.Add(uint64((size + seg - 1) / seg))
	}
	addr := sourceOf(&s.names[i], h.Hdr.Namelen, &s.c.zones)
	if c.reply != nil {
		oob = c.reply.take(addr, oob)
	}
	q.bufs = append(q.bufs, groBuf{
		data:  s.slots[i*groSlot : i*groSlot+size],
		seg:   seg,
		addr:  addr,
		oob:   oob,
		flags: int(h.Hdr.Flags),
	})
	return coalesced
}

// buildDirect points one header at each slot, as buildSlots does, but with
// the buffers of msgs[i] (at most groSlot bytes of them) in front of slot
// i: the kernel still has 64 KiB of room for a coalesced buffer, and a
// plain datagram lands where a read with GRO off would have put it. It
// needs a message for every slot, and returns how many headers it built: 0
// when a message has so many buffers that the slot's would pass the
// kernel's iovec limit.
func (s *recvState) buildDirect(msgs []Message) int {
	k := s.slotCount()
	nbuf := k
	for i := range k {
		if len(msgs[i].Buffers) >= maxIovecs {
			return 0
		}
		nbuf += len(msgs[i].Buffers)
	}
	s.grow(k)
	if cap(s.iovs) < nbuf {
		s.iovs = make([]unix.Iovec, 0, nbuf)
	}
	if cap(s.room) < k {
		s.room = make([]int, k)
	}
	s.iovs, s.room = s.iovs[:0], s.room[:k]
	for i := range k {
		h := &s.hdrs[i]
		h.Hdr = unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&s.names[i])),
			Namelen: unix.SizeofSockaddrInet6,
			Control: &s.ctrl[i*s.ctrlRoom],
		}
		h.Hdr.SetControllen(s.ctrlRoom)
		h.Len = 0
		iov0, room := len(s.iovs), 0
		for _, b := range msgs[i].Buffers {
			if b = b[:min(len(b), groSlot-room)]; len(b) > 0 {
				v := unix.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				s.iovs = append(s.iovs, v)
				room += len(b)
			}
		}
		if room < groSlot {
			v := unix.Iovec{Base: &s.slots[i*groSlot+room]}
			v.SetLen(groSlot - room)
			s.iovs = append(s.iovs, v)
		}
		h.Hdr.Iov = &s.iovs[iov0]
		h.Hdr.SetIovlen(len(s.iovs) - iov0)
		s.room[i] = room
	}
	return k
}

// readDirect completes the messages a call built by buildDirect filled, and
// returns how many, and whether it met a coalesced buffer. Plain datagrams
// are in place already. A coalesced buffer, and every buffer after it, is
// made whole in its slot (the part in the caller's buffers copied in front
// of the rest) and queued, so it is split as buildSlots' buffers are: no
// caller ever sees it unsplit, and the order holds.
func (s *recvState) readDirect(msgs []Message, flags int) (int, bool) {
	c := s.c
	bytes := 0
	for i := range s.got {
		h := &s.hdrs[i]
		size := min(int(h.Len), groSlot)
		seg, oob := cutGRO(s.ctrl[i*s.ctrlRoom : i*s.ctrlRoom+int(h.Hdr.Controllen)])
		if seg > 0 && size > seg {
			for j := i; j < s.got; j++ {
				got := min(int(s.hdrs[j].Len), groSlot, s.room[j])
				refill(s.slots[j*groSlot:j*groSlot+got], msgs[j].Buffers)
			}
			c.rstats.messages.Add(uint64(i))
			c.rstats.bytes.Add(uint64(bytes))
			s.queueBuf(i, seg, oob)
			s.queue(i + 1)
			return i, true
		}
		m := &msgs[i]
		stored := min(size, s.room[i])
		m.N = stored
		f := int(h.Hdr.Flags) &^ (msgTrunc | msgCtrunc)
		if stored < size || h.Hdr.Flags&msgTrunc != 0 {
			f |= msgTrunc
			if flags&msgTrunc != 0 {
				m.N = size
			}
		}
		m.Addr = sourceOf(&s.names[i], h.Hdr.Namelen, &s.c.zones)
		if c.reply != nil {
			oob = c.reply.take(m.Addr, oob)
		}
		var ctrunc bool
		m.NN, ctrunc = putCmsgs(m.OOB, oob)
		if ctrunc || h.Hdr.Flags&msgCtrunc != 0 {
			f |= msgCtrunc
		}
		m.Flags = f
		bytes += size
	}
	c.rstats.messages.Add(uint64(s.got))
	c.rstats.bytes.Add(uint64(bytes))
	return s.got, false
}

// recvmmsgFunc is the signature of the recvmmsg seam.
type recvmmsgFunc = func(fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno)

// recvmmsg is the seam between the receive logic and the kernel; tests
// replace it to produce what the kernel cannot be made to produce on demand.
var recvmmsg recvmmsgFunc = func(fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno) {
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
