package batchconn

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// ReadMessages receives datagrams into msgs[0], msgs[1], ..., one datagram
// per message, using as few system calls as it can. It returns how many
// messages, from the front of msgs, it filled, and sets Addr, N, NN and
// Flags, and the bytes in Buffers and OOB, for those messages only; later
// messages are left exactly as they were.
//
// It returns an error only when it received nothing, and considers at most
// [MaxMessages] messages. A datagram larger than its message's Buffers is
// truncated and flagged MSG_TRUNC in Flags (with MSG_TRUNC in flags, N is the
// datagram's real length, as on Linux); control messages that do not fit in
// OOB set MSG_CTRUNC. A 0-byte datagram is a message with N == 0. The
// messages' Buffers and OOB must not share memory: each is the room for one
// datagram, and the bytes a call stores there (also past N) belong to it.
//
// In blocking mode (the default) the call waits in the Go runtime's network
// poller until at least one datagram is there, or until ctx is done, the
// read deadline passes or the Conn is closed (then it returns their error);
// then it returns every datagram already queued, up to len(msgs), without
// waiting for more. In non-blocking mode ([Conn.SetBlocking](false), or
// unix.MSG_DONTWAIT in flags for one call) it never waits and returns
// [ErrWouldBlock] if nothing was queued. Reads are served one at a time;
// they never delay writes.
//
// flags are passed to the kernel as given (MSG_TRUNC, MSG_PEEK,
// MSG_ERRQUEUE, ...), and with GRO on they give what they give with it off;
// with MSG_PEEK the call returns the first datagram only, and leaves it
// queued.
// Errors are *net.OpError values with Op "read"; kernel errors keep their
// *os.SyscallError and errno, so errors.Is(err, syscall.ECONNREFUSED) works on
// a connected socket whose peer refused an earlier datagram.
//
// On Linux the datagrams come in through recvmmsg(2), with UDP GRO if
// [WithGRO] turned it on; see the package documentation. On other platforms
// each message is one system call, with the same results.
func (c *Conn) ReadMessages(ctx context.Context, msgs []Message, flags int) (int, error) {
	if c.closed.Load() || c.rc.Control(noControl) != nil {
		return 0, c.readError(net.ErrClosed)
	}
	if ctx == nil {
		return 0, c.readError(errNilContext)
	}
	if err := ctx.Err(); err != nil {
		return 0, c.readError(err)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	if len(msgs) > MaxMessages {
		msgs = msgs[:MaxMessages]
	}
	if flags&msgPeek != 0 {
		// recvmmsg would peek at the same first datagram for every
		// message; one is all a peek can see.
		msgs = msgs[:1]
	}
	wait := c.blocking.Load() && flags&msgDontwait == 0
	if err := c.rlock(ctx, wait); err != nil {
		return 0, c.readError(err)
	}
	defer c.runlock()
	n, err := c.recv(ctx, msgs, flags, wait)
	c.rd.disarm()
	if n > 0 {
		return n, nil
	}
	return 0, err
}

// readSide is the portable part of a Conn's receive state.
type readSide struct {
	c       *Conn
	network string // for errors of both directions, as the UDPConn names it

	// gate admits one reader at a time; its holder owns the fields below it
	// and the Conn's rx. It is parked while the holder waits in the poller,
	// so the socket had nothing queued when it last looked.
	gate gate

	// pending is a kernel error met after datagrams were received: it is
	// the next call's to report (R9), as the kernel does for recvmmsg.
	pending error

	// q holds datagrams the kernel coalesced (GRO) that were not handed
	// out yet; they come before anything read from the socket.
	q groQueue

	// Single-datagram reads through the Conn go through a one-message
	// batch.
	one [1][]byte
	msg [1]Message

	// Context cancellation ends a wait by setting a past read deadline
	// (kick); the user's deadline is restored afterwards (disarm).
	dlMu     sync.Mutex
	deadline time.Time // the read deadline the user set
	kicked   bool

	ctx      context.Context
	armed    bool
	stopKick func() bool
	kickWG   sync.WaitGroup
	kickFn   func()
}

// initRead sets up the receive side and turns GRO on if asked and possible.
func (c *Conn) initRead(gro bool) {
	r := &c.rd
	r.c = c
	r.network = udpNetwork(c.udp, c.laddr)
	r.kickFn = r.kick
	switch {
	case !gro:
		c.groOff = "off by default; WithGRO(true) turns it on"
	case envTrue(os.Getenv(envDisableGRO)):
		c.groOff = "disabled by " + envDisableGRO
	default:
		if err := groEnable(c.rc); err != nil {
			c.groOff = "not supported: " + err.Error()
		} else {
			c.gro = true
		}
	}
	c.rx.init(c)
}

// rlock takes the read gate, or gives up when ctx is done or the Conn
// closes. A reader that must not wait does not queue behind one that waits
// in the poller: that one found the socket empty, and would take any
// datagram first anyway. Behind a holder that is reading it waits, parked,
// for the release (see gate).
func (c *Conn) rlock(ctx context.Context, wait bool) error {
	if wait {
		return c.rd.gate.lock(ctx, c.closing)
	}
	return c.rd.gate.lockNow(ctx, c.closing, nil)
}

func (c *Conn) runlock() {
	c.rd.ctx = nil
	c.rd.gate.unlock()
}

// arm makes the cancellation of the current reader's context end its wait.
// It is called only when a wait begins, so calls that never wait allocate
// nothing for it.
func (r *readSide) arm() {
	r.gate.park()
	if r.armed || r.ctx == nil || r.ctx.Done() == nil {
		return
	}
	r.armed = true
	r.kickWG.Add(1)
	r.stopKick = context.AfterFunc(r.ctx, r.kickFn)
}

func (r *readSide) kick() {
	defer r.kickWG.Done()
	r.dlMu.Lock()
	r.kicked = true
	r.c.udp.SetReadDeadline(aLongTimeAgo)
	r.dlMu.Unlock()
}

// disarm undoes arm, and restores the user's read deadline if a kick
// replaced it.
func (r *readSide) disarm() {
	r.gate.unpark()
	if !r.armed {
		return
	}
	r.armed = false
	if r.stopKick() {
		r.kickWG.Done()
	}
	r.kickWG.Wait()
	r.stopKick = nil
	r.dlMu.Lock()
	if r.kicked {
		r.kicked = false
		r.c.udp.SetReadDeadline(r.deadline)
	}
	r.dlMu.Unlock()
}

// expired reports whether the user's read deadline has passed. A read with
// datagrams queued in the Conn checks it, as the poller would before a read
// of the socket: a *net.UDPConn fails such a read even with data queued.
func (r *readSide) expired() bool {
	r.dlMu.Lock()
	d := r.deadline
	r.dlMu.Unlock()
	return !d.IsZero() && !time.Now().Before(d)
}

// rawRead makes a receive system call, as rawWrite makes a send: a reader
// that may wait goes through RawConn.Read, one that must not through
// RawConn.Control, which takes none of the net package's locks. So a
// non-blocking read never queues behind a read that waits in the poller
// without the read gate: the single-datagram read methods of a Conn with
// GRO off are the UDPConn's own (R3). The read deadline is applied here.
func (c *Conn) rawRead(fn func(uintptr) bool, ctl func(uintptr), wait bool) error {
	if wait {
		return c.rc.Read(fn)
	}
	if c.rd.expired() {
		return os.ErrDeadlineExceeded
	}
	return c.rc.Control(ctl)
}

// readError wraps err the way *net.UDPConn reports read errors.
func (c *Conn) readError(err error) error {
	return &net.OpError{Op: "read", Net: c.rd.network, Source: c.laddr, Addr: c.udp.RemoteAddr(), Err: err}
}

// udpNetwork returns the network name the UDPConn puts in its errors: the one
// it was made with ("udp4"), which its LocalAddr does not keep ("udp").
// Writing nowhere fails before any system call, with an error that holds it.
func udpNetwork(uc *net.UDPConn, laddr net.Addr) string {
	var oe *net.OpError
	if _, err := uc.WriteToUDPAddrPort(nil, netip.AddrPort{}); errors.As(err, &oe) && oe.Net != "" {
		return oe.Net
	}
	return laddr.Network()
}

// noSource is what a failed ReadMsgUDPAddrPort of a *net.UDPConn reports as
// the source: the unspecified address of the socket's family.
func (c *Conn) noSource() netip.AddrPort {
	if c.sock4 {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	return netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
}

// readOne reads one datagram through the Conn's batch, for the
// single-datagram read methods of a Conn with GRO or reply sources on
// (batchReads). Like a *net.UDPConn
// read it always waits, whatever SetBlocking says, until the read deadline.
// With wantAddr it returns the source as a *net.UDPAddr too. A kernel error
// names the system call the UDPConn's method would have made (name: "read",
// "recvfrom" or "recvmsg"), not the recvmmsg the batch made, and for
// "recvmsg" comes with n = -1, as the UDPConn's does.
func (c *Conn) readOne(b, oob []byte, wantAddr bool, name string) (n, oobn, flags int, src netip.AddrPort, addr *net.UDPAddr, err error) {
	if c.closed.Load() {
		return 0, 0, 0, src, nil, c.readError(net.ErrClosed)
	}
	ctx := context.Background()
	if err := c.rlock(ctx, true); err != nil {
		return 0, 0, 0, src, nil, c.readError(err)
	}
	defer c.runlock()
	r := &c.rd
	r.one[0] = b
	r.msg[0] = Message{Buffers: r.one[:], OOB: oob}
	k, err := c.recv(ctx, r.msg[:], 0, true)
	r.disarm()
	m := r.msg[0]
	r.one[0], r.msg[0] = nil, Message{} // keep no pointer to the caller's memory
	if k == 0 {
		var se *os.SyscallError
		if errors.As(err, &se) {
			se.Syscall = name // made by this call's recv, shared with no one
			if name == "recvmsg" {
				// The UDPConn's ReadMsg methods pass on recvmsg's -1
				// with a kernel error (internal/poll does not zero it).
				n = -1
			}
		}
		return n, 0, 0, src, nil, err
	}
	if wantAddr {
		addr = net.UDPAddrFromAddrPort(m.Addr) // a fresh one, as the UDPConn's
	}
	return m.N, m.NN, m.Flags, m.Addr, addr, nil
}

// The receive half's pure logic: splitting buffers the kernel coalesced with
// UDP GRO back into datagrams. It has no build tags, so it is tested on
// every OS.

// Linux values used by the splitter, fixed by the kernel ABI
// (include/uapi/linux/udp.h, include/linux/socket.h) on every architecture.
const (
	udpGRO    = 104  // UDP_GRO: the cmsg type; its payload is a C int, the segment size
	groIntLen = 4    // sizeof(int)
	msgTrunc  = 0x20 // MSG_TRUNC
	msgCtrunc = 0x8  // MSG_CTRUNC
	msgPeek   = 0x2  // MSG_PEEK (the same on the BSDs, macOS and Windows)

	// The kernel copies MSG_CMSG_CLOEXEC from a read's flags into every
	// msg_flags it returns (____sys_recvmsg; MSG_CMSG_COMPAT too, but a
	// native call with it fails with EINVAL), so a datagram handed out
	// from the queue takes it from the call that hands it out, not from
	// the one that read it.
	msgEcho = 0x40000000 // MSG_CMSG_CLOEXEC
)

// groCmsgSpace is the room the UDP_GRO control message takes:
// CMSG_SPACE(sizeof(int)).
var groCmsgSpace = cmsgAlignUp(cmsgHdrLen + groIntLen)

// GRO's receive buffers. A slot must hold the largest buffer the kernel may
// coalesce (64 KiB, at most UDP_GRO_CNT_MAX = 64 datagrams), or the kernel
// truncates it. A Conn starts with 8 slots (512 KiB, allocated at its first
// read with GRO on): enough for up to 512 datagrams of GSO-sent traffic per
// system call. Plain datagrams take a slot each, so when they fill every
// slot of a call that had messages to spare, the slots double, up to 64
// (4 MiB, the most a Conn ever holds): then plain traffic costs at most as
// many system calls as with GRO off. A caller of fewer messages than slots
// (quic-go reads 8) does not grow them: quicbench measured more slots
// costing its receivers more CPU (cache) than the system calls they saved.
// A call with a message for every slot, after a call that met no
// coalesced buffer, lets the kernel write into the messages' buffers first
// (the slots only take what does not fit), so plain datagrams cost no copy.
// Slots are written only as far as datagrams fill them.
//
// Each slot has control room for the largest OOB a call has offered (at
// least groCtrl), plus the UDP_GRO message the kernel adds among the
// others and the Conn removes: so the kernel stores into a slot all that
// it would store into that OOB with GRO off (the socket-level messages it
// puts before UDP_GRO, timestamps and the like, stay well under groCtrl),
// and putCmsgs then lays it out in each caller's OOB exactly as the kernel
// would have. The room grows when a call offers more (up to groMaxCtrl, 64
// KiB: more control data than that for one datagram needs over 20 KiB of
// IPv6 extension headers), and never shrinks.
const (
	groSlot     = 64 << 10
	groCtrl     = 256 // the least control room per slot, UDP_GRO aside
	groMaxCtrl  = 64 << 10
	groSlots    = 8
	groMaxSlots = 64
)

// A groBuf is one buffer the kernel filled: one datagram, or with seg > 0 a
// run of seg-byte datagrams of one flow (the last may be shorter).
type groBuf struct {
	data  []byte
	seg   int
	addr  netip.AddrPort
	oob   []byte // the buffer's control messages, UDP_GRO removed
	flags int    // the kernel's msg_flags for the buffer
}

// A groQueue hands out the datagrams of bufs in order.
type groQueue struct {
	bufs []groBuf
	head int // bufs[head:] hold datagrams not handed out yet
	off  int // bytes of bufs[head].data already handed out
}

func (q *groQueue) empty() bool { return q.head >= len(q.bufs) }

// reset empties the queue; bufs keeps its storage.
func (q *groQueue) reset() {
	q.bufs, q.head, q.off = q.bufs[:0], 0, 0
}

// next stores the first queued datagram into m, as a read of it from the
// socket would have with the call's flags, and removes it from the queue.
// It returns the datagram's length.
func (q *groQueue) next(m *Message, flags int) int {
	b := &q.bufs[q.head]
	size := len(b.data) - q.off
	if b.seg > 0 && size > b.seg {
		size = b.seg
	}
	d := b.data[q.off : q.off+size]
	q.off += size
	last := q.off >= len(b.data)
	if last {
		q.head++
		q.off = 0
	}
	var stored int
	if len(m.Buffers) == 1 { // the common shape, without scatter's loop
		stored = copy(m.Buffers[0], d)
	} else {
		stored = scatter(m.Buffers, d)
	}
	f := b.flags&^(msgTrunc|msgCtrunc|msgEcho) | flags&msgEcho
	m.N = stored
	// The kernel truncates only when its slot is too small; then the last
	// datagram of the buffer is the one cut.
	if stored < size || (last && b.flags&msgTrunc != 0) {
		f |= msgTrunc
		if flags&msgTrunc != 0 {
			m.N = size
		}
	}
	m.NN = 0
	if len(b.oob) > 0 {
		var ctrunc bool
		if m.NN, ctrunc = putCmsgs(m.OOB, b.oob); ctrunc {
			f |= msgCtrunc
		}
	}
	if b.flags&msgCtrunc != 0 {
		f |= msgCtrunc
	}
	m.Flags = f
	m.Addr = b.addr
	return size
}

// scatter copies d into bufs in order and returns the bytes stored.
func scatter(bufs [][]byte, d []byte) int {
	n := 0
	for _, b := range bufs {
		if n == len(d) {
			break
		}
		n += copy(b, d[n:])
	}
	return n
}

// refill copies bufs, in order, into dst until it is full: the reverse of
// scatter.
func refill(dst []byte, bufs [][]byte) {
	n := 0
	for _, b := range bufs {
		if n == len(dst) {
			break
		}
		n += copy(dst[n:], b)
	}
}

// cmsgLen reads the cmsg_len of the control message at the front of b (which
// holds at least a header).
func cmsgLen(b []byte) int {
	if cmsgAlign == 8 {
		return int(binary.NativeEndian.Uint64(b))
	}
	return int(binary.NativeEndian.Uint32(b))
}

// putCmsgs copies the control messages in src, which the kernel stored with
// room to spare, to dst as the kernel's put_cmsg (net/core/scm.c) stores
// them into a reader's control buffer with GRO off: in order, each taking
// its aligned space or what is left; the first one that does not fit whole
// is cut to what is left, its cmsg_len rewritten to say so, if at least a
// header's worth is left, and nothing after it is stored. It returns the
// bytes used as the kernel counts them (msg_controllen) and whether
// anything did not fit (MSG_CTRUNC). Padding between messages is not
// written, as the kernel does not write it.
func putCmsgs(dst, src []byte) (nn int, ctrunc bool) {
	for off := 0; off+cmsgHdrLen <= len(src); {
		l := cmsgLen(src[off:])
		if l < cmsgHdrLen || l > len(src)-off {
			return nn, true // not the kernel's: never stored
		}
		room := len(dst) - nn
		if room < cmsgHdrLen {
			return nn, true
		}
		if room < l {
			copy(dst[nn:], src[off:off+room])
			putCmsgLen(dst[nn:], room)
			return nn + room, true
		}
		copy(dst[nn:], src[off:off+l])
		nn += min(cmsgAlignUp(l), room)
		off += cmsgAlignUp(l)
	}
	return nn, false
}

// putCmsgLen writes n as the cmsg_len of the control message at the front
// of b (which holds at least a header).
func putCmsgLen(b []byte, n int) {
	if cmsgAlign == 8 {
		binary.NativeEndian.PutUint64(b, uint64(n))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(n))
	}
}

// cutGRO finds the UDP_GRO control message in oob, removes it in place, and
// returns the segment size it holds (0 if there is none) and the rest. The
// payload is a C int, read whole in native byte order: reading only 2 bytes
// works on little-endian machines alone. Malformed control data is returned
// as it is.
func cutGRO(oob []byte) (seg int, rest []byte) {
	for off := 0; off+cmsgHdrLen <= len(oob); {
		h := oob[off:]
		l := cmsgLen(h)
		if l < cmsgHdrLen || l > len(h) {
			return seg, oob
		}
		lv := int32(binary.NativeEndian.Uint32(h[cmsgAlign:]))
		ty := int32(binary.NativeEndian.Uint32(h[cmsgAlign+4:]))
		space := min(cmsgAlignUp(l), len(h))
		if lv != solUDP || ty != udpGRO || l < cmsgHdrLen+groIntLen {
			off += space
			continue
		}
		seg = int(int32(binary.NativeEndian.Uint32(h[cmsgHdrLen:])))
		if seg < 0 {
			seg = 0
		}
		copy(h, h[space:])
		oob = oob[:len(oob)-space]
	}
	return seg, oob
}
