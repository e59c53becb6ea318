//go:build linux && !batchconn_sendmsg

package batchconn

import (
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A run is what one header carries: msgs[start] alone (count 1), or a GSO
// run of count >= 2 messages cut into seg-byte datagrams by the kernel.
type run struct {
	start, count, seg int
}

// sendState holds a Conn's reusable send state. Only the holder of the Conn's
// write gate touches it, so one set serves every call without allocating.
type sendState struct {
	c     *Conn
	p     planner
	hdrs  []unix.Mmsghdr // struct mmsghdr; TestMmsghdrLayout checks it
	runs  []run
	names []unix.RawSockaddrInet6
	iovs  []unix.Iovec
	ctrl  []byte
	dests gsoDests

	// How many headers and iovecs this call has filled: release clears
	// them, so that nothing points at the caller's memory after the call.
	usedHdrs, usedIovs int

	// The system call in progress: hdrs[h:nh] with flags; its outcome.
	h, nh, flags int
	wait         bool
	sent         int
	errno        syscall.Errno

	// Callbacks for RawConn.Write, bound once.
	writeFn, writableFn func(fd uintptr) bool
	writeCtl            func(fd uintptr) // writeFn for RawConn.Control
	pollfd              [1]unix.PollFd
}

func (s *sendState) init(c *Conn) {
	s.c = c
	s.p = planner{sock4: c.sock4, peer4: c.peer4, maxSegs: maxGSOSegments, dests: &s.dests}
	if c.GSOEnabled() {
		s.p.maxSegs = gsoSegments()
	}
	s.writeFn = s.write
	s.writeCtl = func(fd uintptr) { s.write(fd) }
	s.writableFn = s.writable
}

// msgDontwait is the per-call "don't wait" flag (C5, C11).
const msgDontwait = unix.MSG_DONTWAIT

// hostCmsg is the kernel's cmsghdr layout; TestHostCmsgLayout checks it
// against x/sys.
var hostCmsg = linuxCmsg

// gsoFlags are the flags under which a GSO send forms the same datagrams as
// plain sends do. Any other flag may change how the kernel forms datagrams
// (MSG_MORE corks them into one; MSG_PROBE, MSG_EOR, MSG_OOB, MSG_ZEROCOPY
// and flags unknown today are not worth the risk), so a call that passes
// one is not coalesced (C14).
const gsoFlags = unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL | unix.MSG_CONFIRM | unix.MSG_DONTROUTE

// useGSO reports whether this call may coalesce.
func (s *sendState) useGSO() bool {
	return s.c.GSOEnabled() && s.flags&^gsoFlags == 0
}

// udpSegmentSpace is the room a UDP_SEGMENT control message takes.
var udpSegmentSpace = unix.CmsgSpace(2)

// send sends msgs with sendmmsg(2) until all are accepted or one fails. The
// caller holds the write gate.
func (c *Conn) send(ctx context.Context, msgs []Message, flags int, wait bool) (int, error) {
	s := &c.tx
	defer s.release()
	c.ctx = ctx
	s.flags, s.wait = flags, wait
	s.p.gso = s.useGSO()
	s.p.plainUntil = 0
	s.p.recvErr = c.recvErr.Load()
	s.dests.begin()
	c.zones.tick()
	done := 0
	for done < len(msgs) {
		nh, bad := s.build(msgs, done)
		if nh == 0 {
			return done, c.opError(&msgs[done].Addr, bad)
		}
		s.h, s.nh = 0, nh
		retry := false
		for s.h < s.nh && !retry {
			if err := c.rawWrite(s.writeFn, s.writeCtl, wait); err != nil {
				return done, c.opError(nil, c.waitErr(ctx, err))
			}
			if s.errno == 0 {
				done += s.account(msgs, s.h, s.h+s.sent)
				s.h += s.sent
				continue
			}
			r := s.runs[s.h]
			switch {
			case r.count > 1 && (s.errno == unix.EIO || s.errno == unix.EINVAL || s.errno == unix.EMSGSIZE):
				// Resend the run as plain datagrams, at once (C14).
				s.gsoFailed(s.errno, msgs[r.start].Addr)
				s.p.plainUntil = r.start + r.count
				s.p.gso = s.useGSO()
				retry = true
			case s.errno == unix.EAGAIN:
				return done, c.opError(nil, ErrWouldBlock)
			default:
				s.c.zones.failed(msgs[r.start].Addr.Addr().Zone())
				return done, c.opError(&msgs[r.start].Addr, os.NewSyscallError("sendmmsg", s.errno))
			}
		}
		if !retry && bad != nil {
			return done, c.opError(&msgs[done].Addr, bad)
		}
	}
	return done, nil
}

// release clears every pointer to the caller's buffers and control data
// from the reusable headers and iovecs (C9, C10), on every way out of send.
func (s *sendState) release() {
	clear(s.hdrs[:s.usedHdrs])
	clear(s.iovs[:s.usedIovs])
	s.usedHdrs, s.usedIovs = 0, 0
}

// gsoFailed counts a GSO send to dst that the kernel refused and decides
// where GSO stays on: EIO means the route or device cannot do it at all,
// and turns GSO off for the Conn; EINVAL and EMSGSIZE are particular to
// the destination (a segment over its path MTU gets EINVAL from older
// kernels and EMSGSIZE from newer ones, Linux 6.18), and after
// maxDestGSOFailures in a row that destination alone gets plain runs for a
// while (see gsoDests).
// Either way the run's datagrams still go out plain, as IP fragments if
// need be.
func (s *sendState) gsoFailed(errno syscall.Errno, dst netip.AddrPort) {
	s.c.stats.gsoFallbacks.Add(1)
	if errno == unix.EIO {
		s.c.disableGSO("the kernel failed a GSO send with EIO")
		return
	}
	s.dests.failed(dst)
}

// account records the outcome of headers [from, to), which the kernel
// accepted, and returns how many messages they carried.
func (s *sendState) account(msgs []Message, from, to int) int {
	var messages, bytes, gso int
	for h := from; h < to; h++ {
		r := s.runs[h]
		total := int(s.hdrs[h].Len)
		bytes += total
		messages += r.count
		if r.count == 1 {
			msgs[r.start].N = total
			s.dests.sentPlain(msgs[r.start].Addr)
			continue
		}
		gso++
		s.dests.accepted(msgs[r.start].Addr)
		last := r.start + r.count - 1
		for j := r.start; j < last; j++ {
			msgs[j].N = r.seg
		}
		msgs[last].N = total - r.seg*(r.count-1)
	}
	c := s.c
	c.stats.messages.Add(uint64(messages))
	c.stats.bytes.Add(uint64(bytes))
	if gso > 0 {
		c.stats.gsoBatches.Add(uint64(gso))
	}
	return messages
}

// build fills headers for msgs[from:], one per plain message or GSO run,
// and returns how many it built. It stops before the first message whose
// destination is invalid, and returns that message's error too.
func (s *sendState) build(msgs []Message, from int) (nh int, bad error) {
	// Size the storage first so nothing moves while headers point into it.
	nbuf, nctrl := 0, 0
	for i := from; i < len(msgs); i++ {
		nbuf += len(msgs[i].Buffers)
		nctrl += cmsgAlignUp(len(msgs[i].OOB)) + udpSegmentSpace
	}
	n := len(msgs) - from
	if cap(s.hdrs) < n {
		s.hdrs = make([]unix.Mmsghdr, n)
		s.runs = make([]run, n)
		s.names = make([]unix.RawSockaddrInet6, n)
	}
	if cap(s.iovs) < nbuf {
		s.iovs = make([]unix.Iovec, 0, nbuf)
	}
	if s.p.gso && cap(s.ctrl) < nctrl {
		s.ctrl = make([]byte, 0, nctrl)
	}
	s.hdrs, s.runs, s.names = s.hdrs[:n], s.runs[:n], s.names[:n]
	s.iovs, s.ctrl = s.iovs[:0], s.ctrl[:0]
	s.usedHdrs = max(s.usedHdrs, n)
	defer func() { s.usedIovs = max(s.usedIovs, len(s.iovs)) }()

	for i := from; i < len(msgs); {
		m := &msgs[i]
		if err := checkMsg(m, hostCmsg); err != nil {
			return nh, err
		}
		h := &s.hdrs[nh]
		h.Hdr = unix.Msghdr{}
		h.Len = 0
		if m.Addr != (netip.AddrPort{}) {
			ip, zone, err := checkDest(m.Addr, s.c.sock4, s.c.v6only, &s.c.zones)
			if err != nil {
				return nh, err
			}
			h.Hdr.Name, h.Hdr.Namelen = s.putName(nh, ip, m.Addr.Port(), zone)
		}
		count, seg := s.p.runLen(msgs, i)
		iov0 := len(s.iovs)
		for j := i; j < i+count; j++ {
			for _, b := range msgs[j].Buffers {
				if len(b) == 0 {
					continue
				}
				// Buffers that sit back to back in memory (datagrams cut
				// from one slab) share an iovec: less for the kernel to
				// walk, and still nothing copied.
				if k := len(s.iovs) - 1; k >= iov0 && adjacent(&s.iovs[k], b) {
					s.iovs[k].SetLen(int(s.iovs[k].Len) + len(b))
					continue
				}
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
		case count > 1:
			off := len(s.ctrl)
			s.ctrl = appendUDPSegment(s.ctrl, m.OOB, seg)
			h.Hdr.Control = &s.ctrl[off]
			h.Hdr.SetControllen(len(s.ctrl) - off)
		case len(m.OOB) > 0:
			h.Hdr.Control = &m.OOB[0]
			h.Hdr.SetControllen(len(m.OOB))
		}
		s.runs[nh] = run{start: i, count: count, seg: seg}
		nh++
		i += count
	}
	return nh, nil
}

// adjacent reports whether b starts where v ends. Only addresses are
// compared; no pointer past the end of v is formed.
func adjacent(v *unix.Iovec, b []byte) bool {
	return uintptr(unsafe.Pointer(v.Base))+uintptr(v.Len) == uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

// putName writes a sockaddr of the socket's family into slot k.
func (s *sendState) putName(k int, ip netip.Addr, port uint16, zone uint32) (*byte, uint32) {
	sa := &s.names[k]
	if s.c.sock4 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], port)
		return (*byte)(unsafe.Pointer(sa4)), unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16(), Scope_id: zone}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], port)
	return (*byte)(unsafe.Pointer(sa)), unix.SizeofSockaddrInet6
}

// zeros is room for a control message, appended without allocating.
var zeros [64]byte

// appendUDPSegment appends oob, padded to cmsg alignment, and a UDP_SEGMENT
// control message for seg-byte segments (a native-endian u16).
func appendUDPSegment(ctrl, oob []byte, seg int) []byte {
	ctrl = append(ctrl, oob...)
	for len(ctrl)%cmsgAlign != 0 {
		ctrl = append(ctrl, 0)
	}
	off := len(ctrl)
	ctrl = append(ctrl, zeros[:udpSegmentSpace]...)
	h := ctrl[off:]
	if cmsgAlign == 8 {
		binary.NativeEndian.PutUint64(h, uint64(unix.CmsgLen(2)))
	} else {
		binary.NativeEndian.PutUint32(h, uint32(unix.CmsgLen(2)))
	}
	binary.NativeEndian.PutUint32(h[cmsgAlign:], unix.SOL_UDP)
	binary.NativeEndian.PutUint32(h[cmsgAlign+4:], unix.UDP_SEGMENT)
	binary.NativeEndian.PutUint16(h[cmsgHdrLen:], uint16(seg))
	return ctrl
}

// sendmmsg is the seam between the send logic and the kernel; tests replace
// it to produce what the kernel cannot be made to produce on demand.
var sendmmsg = func(fd uintptr, hdrs []unix.Mmsghdr, flags int) (int, syscall.Errno) {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), uintptr(flags), 0, 0)
	return int(n), e
}

// write is the RawConn.Write callback: one sendmmsg of hdrs[h:nh]. It returns
// false, to wait in the poller, only on EAGAIN in blocking mode.
func (s *sendState) write(fd uintptr) bool {
	for {
		n, errno := sendmmsg(fd, s.hdrs[s.h:s.nh], s.flags)
		s.c.stats.syscalls.Add(1)
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

// writable is the RawConn.Write callback of WaitWritable: done when the
// socket takes data, else wait in the poller.
func (s *sendState) writable(fd uintptr) bool {
	if pollWritable(&s.pollfd, fd) {
		return true
	}
	s.c.arm()
	return false
}
