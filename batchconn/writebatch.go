package batchconn

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// MaxMessages is the most messages one WriteMessages or ReadMessages call
// considers: Linux's UIO_MAXIOV (1024), the limit sendmmsg(2) and recvmmsg(2)
// apply to their vectors. Messages past it are not looked at; the caller
// loops with msgs = msgs[n:].
const MaxMessages = 1024

// Datagram payload ceilings: 65535 minus the IPv4 (20) and UDP (8) headers, and
// 65535 minus the UDP header for IPv6, whose payload length excludes its own header.
const (
	maxPayload4 = 65535 - 20 - 8 // 65507
	maxPayload6 = 65535 - 8      // 65527
)

// Segments per UDP GSO send. The kernel's UDP_MAX_SEGMENTS was 64 until
// Linux 6.9 (2024) and is 128 since, and in some stable backports, so the
// version number cannot tell which. maxGSOSegments is safe on every kernel
// that has UDP_SEGMENT at all; probedGSOSegments is used where a run-time
// probe (gsoSegments, once per process) shows the kernel takes it.
const (
	maxGSOSegments    = 64
	probedGSOSegments = 128
)

// maxIovecs is the kernel's per-message iovec limit (UIO_MAXIOV); a message with
// more buffers fails with EMSGSIZE, so a GSO run never grows past it.
const maxIovecs = 1024

// A Message is one datagram, for [Conn.WriteMessages] to send or for
// [Conn.ReadMessages] to receive into. One type serves both directions, so a
// relay can read a batch and write it back out.
type Message struct {
	// Addr is, when sending, the destination: the zero AddrPort means the
	// connected peer, and on an unconnected socket such a message fails with
	// EDESTADDRREQ. When receiving it is set to the datagram's source, as
	// [net.UDPConn.ReadMsgUDPAddrPort] reports it (IPv4 sources on an IPv6
	// socket are IPv4-mapped).
	//
	// An IPv6 zone is the name of the interface (or its index, when it has
	// no name), in the socket's network namespace. A renamed interface is
	// reported under its new name within a second, and a name the Conn
	// reported before the rename still reaches the interface when sending,
	// as long as no other interface has taken it, so a long-running program
	// keeps its link-local peers.
	Addr netip.AddrPort

	// Buffers are, when sending, gathered in order into one datagram: no
	// buffers, or only empty ones, make a valid 0-byte datagram; more than
	// 1024 (Linux's UIO_MAXIOV), empty ones included, fail the message with
	// EMSGSIZE on every platform; they are only read. When receiving, the
	// datagram is scattered into them in order, and their lengths are the
	// room. They are not retained after the call.
	Buffers [][]byte

	// OOB holds control messages (cmsgs, as built or parsed by
	// golang.org/x/sys/unix or golang.org/x/net/ipv4). When sending they
	// apply to this datagram only (nil means none) and are passed to the
	// kernel as given; malformed control data fails the message with EINVAL,
	// including what the kernel would silently ignore: fewer bytes than one
	// cmsg header, or bytes left over after the last control message. When
	// receiving, OOB's length is the room for them. It is not retained.
	OOB []byte

	// N is set, for the messages a call reports, to the bytes sent (the
	// datagram's length) or the bytes stored in Buffers when receiving
	// (with MSG_TRUNC in ReadMessages' flags, a truncated datagram's real
	// length, as Linux reports it).
	N int

	// NN is set by ReadMessages to the bytes of control messages stored in
	// OOB.
	NN int

	// Flags is set by ReadMessages to the kernel's msg_flags for the
	// datagram: MSG_TRUNC if it did not fit in Buffers, MSG_CTRUNC if its
	// control messages did not fit in OOB.
	Flags int
}

// ErrWouldBlock is returned, wrapped in a *net.OpError, by a non-blocking
// WriteMessages that could send nothing because the socket's send buffer is
// full, and by a non-blocking ReadMessages that found nothing to receive.
// errors.Is(err, syscall.EAGAIN) holds for it too.
var ErrWouldBlock error = wouldBlockError{}

type wouldBlockError struct{}

func (wouldBlockError) Error() string        { return "batchconn: operation would block" }
func (wouldBlockError) Is(target error) bool { return target == syscall.EAGAIN }
func (wouldBlockError) Timeout() bool        { return false }
func (wouldBlockError) Temporary() bool      { return true }

// errNilContext is the error for a nil ctx: bad input, reported, never a panic.
var errNilContext = errors.New("batchconn: nil Context")

// WriteMessages sends msgs[0], msgs[1], ... as separate datagrams, each to its
// own destination with its own control messages, using as few system calls as
// it can. It returns how many messages, from the front of msgs, the kernel
// accepted, and sets N for those messages only.
//
// It returns an error only when it sent nothing. A message that cannot be sent
// (a kernel error, a bad address, an oversized datagram, malformed OOB) ends the
// call: WriteMessages returns the count before it with no error, and the
// caller's next call, starting at that message, reports the error. At most
// [MaxMessages] are considered per call, so callers loop:
//
//	for len(msgs) > 0 {
//		n, err := c.WriteMessages(ctx, msgs, 0)
//		if err != nil {
//			return err // msgs[0] could not be sent
//		}
//		msgs = msgs[n:]
//	}
//
// In blocking mode (the default) a full send buffer makes the call wait in the
// Go runtime's network poller until all considered messages are accepted, or
// until ctx is done, the write deadline passes, or the Conn is closed; then it
// returns the count so far, or the error if that is 0. In non-blocking mode
// ([Conn.SetBlocking](false), or unix.MSG_DONTWAIT in flags for one call) it
// never waits and returns [ErrWouldBlock] if nothing could be sent; nor does
// it queue behind another writer that waits for room in the send buffer: it
// gets ErrWouldBlock then too, as it would from the full buffer.
//
// flags are passed to the kernel as given (MSG_CONFIRM, MSG_DONTROUTE, ...);
// a call with flags other than MSG_DONTWAIT, MSG_NOSIGNAL, MSG_CONFIRM and
// MSG_DONTROUTE is not coalesced into GSO sends, since such flags may
// change how the kernel forms datagrams (MSG_MORE corks them into one).
// Errors are *net.OpError values with Op "write"; kernel errors keep their
// *os.SyscallError and errno, so errors.Is(err, syscall.EMSGSIZE) works.
//
// On Linux the messages go out through sendmmsg(2), and runs of equal-size
// messages to one destination are coalesced into UDP GSO sends; none of that
// is observable except in speed. To keep it so, destinations of a family
// whose error reporting is on (IP_RECVERR, or IPV6_RECVERR for IPv6
// destinations; Linux then reports each datagram its qdisc drops, ENOBUFS,
// but a GSO send as accepted if any of its segments was queued) get no GSO
// sends; the Conn reads those options at [New] and after each Control call
// through [Conn.SyscallConn], and does not see them set any other way.
//
// On other platforms each message is one system call, with the same
// results.
func (c *Conn) WriteMessages(ctx context.Context, msgs []Message, flags int) (int, error) {
	if c.closed.Load() || c.rc.Control(noControl) != nil {
		return 0, c.opError(nil, net.ErrClosed)
	}
	if ctx == nil {
		return 0, c.opError(nil, errNilContext)
	}
	if err := ctx.Err(); err != nil {
		return 0, c.opError(nil, err)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	if len(msgs) > MaxMessages {
		msgs = msgs[:MaxMessages]
	}
	wait := c.blocking.Load() && flags&msgDontwait == 0
	if err := c.lock(ctx, wait); err != nil {
		return 0, c.opError(nil, err)
	}
	defer c.unlock()
	if c.q != nil {
		// What the write queue holds was written first (C20).
		if err := c.drainQueue(ctx, wait, c.q.enqueued()); err != nil {
			return 0, c.opError(nil, err)
		}
	}
	n, err := c.send(ctx, msgs, flags, wait)
	c.disarm()
	if n > 0 {
		return n, nil
	}
	return 0, err
}

func noControl(uintptr) {}

// WriteBuffersTo sends each of bufs as one datagram to dst, all with the
// control messages oob (nil for none; [AppendPacketInfo] builds a source
// address): it is [Conn.WriteMessages] of the messages {Addr: dst, Buffers:
// bufs[i:i+1], OOB: oob}, with the same results, errors, limits and GSO
// sends, for the common case of many datagrams to one peer (a QUIC
// connection's packets, a VPN tunnel's) without building a Message for
// each. It returns how many of bufs, from the front, were sent; it allocates
// nothing once warm, and retains none of bufs or oob.
func (c *Conn) WriteBuffersTo(ctx context.Context, bufs [][]byte, oob []byte, dst netip.AddrPort, flags int) (int, error) {
	if len(bufs) > MaxMessages {
		bufs = bufs[:MaxMessages]
	}
	msgs := c.bufMsgs.get(len(bufs))
	for i := range bufs {
		msgs[i] = Message{Addr: dst, Buffers: bufs[i : i+1 : i+1], OOB: oob}
	}
	n, err := c.WriteMessages(ctx, msgs, flags)
	clear(msgs) // keep no pointer to the caller's memory
	c.bufMsgs.put(msgs)
	return n, err
}

// msgSlices is a Conn's free list of WriteBuffersTo's Message slices: a
// call takes one for itself (or makes one) and gives it back when done, so
// concurrent callers, blocking or not, never wait for each other's (C5),
// and a warm call allocates nothing. Its lock is held only to take or give.
type msgSlices struct {
	mu   sync.Mutex
	free [4][]Message
	n    int
}

// get returns a slice of n zero Messages.
func (f *msgSlices) get(n int) []Message {
	f.mu.Lock()
	for i := f.n - 1; i >= 0; i-- {
		if m := f.free[i]; cap(m) >= n {
			f.n--
			f.free[i], f.free[f.n] = f.free[f.n], nil
			f.mu.Unlock()
			return m[:n]
		}
	}
	f.mu.Unlock()
	return make([]Message, n, max(n, 64))
}

// put gives back a cleared slice; beyond four, the smallest is dropped.
func (f *msgSlices) put(m []Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n < len(f.free) {
		f.free[f.n] = m
		f.n++
		return
	}
	small := 0
	for i := range f.free {
		if cap(f.free[i]) < cap(f.free[small]) {
			small = i
		}
	}
	if cap(m) > cap(f.free[small]) {
		f.free[small] = m
	}
}

// msgLen is the length of the datagram m describes.
func msgLen(m *Message) int {
	n := 0
	for _, b := range m.Buffers {
		n += len(b)
	}
	return n
}

// A plan says how messages map onto the datagram headers handed to the kernel.
// Each header carries one message, or a GSO run of 2 or more messages.
type planner struct {
	gso        bool   // coalesce runs at all
	sock4      bool   // the socket is AF_INET (else AF_INET6)
	peer4      bool   // the connected peer, if any, is IPv4 (or IPv4-mapped)
	maxSegs    int    // segments per GSO run
	plainUntil int    // messages before this index are not coalesced (fallback)
	recvErr    uint32 // recvErr4, recvErr6: no runs to destinations of that family (recverr.go)

	dests *gsoDests // destinations that get no GSO runs; nil: none
}

// runLen returns how many messages, starting at msgs[i], go out as one header:
// 1 for a plain message, 2 or more for a GSO run. A run is consecutive messages
// with the same Addr (one that gsoDests has not turned off) and byte-identical
// OOB without a caller UDP_SEGMENT, all of
// the first one's length except a shorter (non-empty) last one, which ends the
// run; it stays within the segment, payload and iovec limits.
func (p *planner) runLen(msgs []Message, i int) (count, seg int) {
	if !p.gso || i < p.plainUntil || i+1 >= len(msgs) {
		return 1, 0
	}
	first := &msgs[i]
	seg = msgLen(first)
	if seg == 0 {
		return 1, 0
	}
	limit, recvErr := maxPayload6, uint32(recvErr6)
	if p.dest4(first.Addr) {
		limit, recvErr = maxPayload4, recvErr4
	}
	if p.recvErr&recvErr != 0 || p.dests.off(first.Addr) {
		return 1, 0
	}
	if found, ok := findCmsg(first.OOB, solUDP, udpSegment); found || !ok {
		return 1, 0
	}
	total, iovs := seg, len(first.Buffers)
	count = 1
	for j := i + 1; j < len(msgs) && count < p.maxSegs; j++ {
		m := &msgs[j]
		if m.Addr != first.Addr || !bytes.Equal(m.OOB, first.OOB) {
			break
		}
		size := msgLen(m)
		if size == 0 || size > seg || total+size > limit || iovs+len(m.Buffers) > maxIovecs {
			break
		}
		total += size
		iovs += len(m.Buffers)
		count++
		if size < seg {
			break // a short datagram ends the run
		}
	}
	if count < 2 {
		return 1, 0
	}
	return count, seg
}

// dest4 reports whether a datagram to a travels over IPv4 (so the IPv4
// payload ceiling applies).
func (p *planner) dest4(a netip.AddrPort) bool {
	if p.sock4 {
		return true
	}
	if a == (netip.AddrPort{}) {
		return p.peer4
	}
	return a.Addr().Is4() || a.Addr().Is4In6()
}

// Linux cmsg values used by the planner. They are fixed by the kernel ABI
// (include/uapi/linux/udp.h, include/linux/socket.h) on every architecture, so
// they are spelled out here to keep the planner portable and testable anywhere.
const (
	solUDP     = 17  // SOL_UDP
	udpSegment = 103 // UDP_SEGMENT
)

// cmsgAlign is the alignment of control messages: sizeof(long) on Linux,
// which equals the pointer size on every Linux port.
const cmsgAlign = int(unsafe.Sizeof(uintptr(0)))

// cmsgHdrLen is sizeof(struct cmsghdr): a size_t length and two ints.
const cmsgHdrLen = cmsgAlign + 4 + 4

func cmsgAlignUp(n int) int { return (n + cmsgAlign - 1) &^ (cmsgAlign - 1) }

// A cmsgLayout is the platform's struct cmsghdr: a length field (size_t on
// Linux and Windows, socklen_t on the BSDs, macOS and Solaris), an int level
// and an int type, each message padded to the alignment.
type cmsgLayout struct {
	lenSize int // size of cmsg_len: 4 or 8
	hdrLen  int // sizeof(struct cmsghdr): the least a cmsg_len may say
	align   int // CMSG_ALIGN's unit
}

// linuxCmsg is Linux's layout, which the planner and GSO use.
var linuxCmsg = cmsgLayout{lenSize: cmsgAlign, hdrLen: cmsgHdrLen, align: cmsgAlign}

// cmsgAt reads the control message at oob[off:], which is not empty, as
// the kernel's CMSG_FIRSTHDR/CMSG_NXTHDR walk with CMSG_OK does: it returns
// its level, type and where the next one starts, or why oob is malformed
// there. Linux refuses a cmsg_len shorter than the header or past the end
// (EINVAL) but silently ignores fewer bytes than a header at the start or
// after the last message (alignment padding ends at or past the end and is
// not a leftover); batchconn refuses all of these (C10).
func (l cmsgLayout) cmsgAt(oob []byte, off int) (level, typ int32, next int, bad *msgError) {
	h := oob[off:]
	if len(h) < l.hdrLen {
		if off == 0 {
			return 0, 0, 0, errOOBShort
		}
		return 0, 0, 0, errOOBLeftover
	}
	var n uint64
	if l.lenSize == 8 {
		n = binary.NativeEndian.Uint64(h)
	} else {
		n = uint64(binary.NativeEndian.Uint32(h))
	}
	if n < uint64(l.hdrLen) || n > uint64(len(h)) {
		return 0, 0, 0, errOOBLen
	}
	level = int32(binary.NativeEndian.Uint32(h[l.lenSize:]))
	typ = int32(binary.NativeEndian.Uint32(h[l.lenSize+4:]))
	next = off + ((int(n) + l.align - 1) &^ (l.align - 1))
	return level, typ, next, nil
}

// checkOOB returns why oob, in layout l, is malformed, or nil.
func checkOOB(oob []byte, l cmsgLayout) error {
	for off := 0; off < len(oob); {
		_, _, next, bad := l.cmsgAt(oob, off)
		if bad != nil {
			return bad
		}
		off = next
	}
	return nil
}

// findCmsg walks oob as the Linux kernel does and reports whether it holds a
// control message of the given level and type, and whether oob is well
// formed. Malformed control data is refused before it gets here (checkMsg);
// the planner still never coalesces it.
func findCmsg(oob []byte, level, typ int32) (found, ok bool) {
	for off := 0; off < len(oob); {
		lv, ty, next, bad := linuxCmsg.cmsgAt(oob, off)
		if bad != nil {
			return found, false
		}
		if lv == level && ty == typ {
			found = true
		}
		off = next
	}
	return found, true
}

// A msgError explains why a message cannot be sent as it is. It unwraps to
// the errno the kernel gives (or would give) for it.
type msgError struct {
	reason string
	errno  syscall.Errno
}

func (e *msgError) Error() string { return "batchconn: " + e.reason }
func (e *msgError) Unwrap() error { return e.errno }

var (
	errOOBShort    = &msgError{"malformed OOB: shorter than one control message header", syscall.EINVAL}
	errOOBLeftover = &msgError{"malformed OOB: bytes left over after the last control message", syscall.EINVAL}
	errOOBLen      = &msgError{"malformed OOB: a cmsg_len shorter than its header or past the end of the control data", syscall.EINVAL}
	errTooManyBufs = &msgError{"more than 1024 buffers (UIO_MAXIOV) in one message", syscall.EMSGSIZE}
)

// checkMsg refuses, before any system call, what the kernel would refuse
// or silently misread: more than UIO_MAXIOV buffers (EMSGSIZE, however the
// buffers lie in memory) and malformed control data (EINVAL, C10). l is the
// platform's cmsg layout.
func checkMsg(m *Message, l cmsgLayout) error {
	if len(m.Buffers) > maxIovecs {
		return errTooManyBufs
	}
	if len(m.OOB) > 0 {
		return checkOOB(m.OOB, l)
	}
	return nil
}

// A destError explains why a message's Addr cannot be a destination on this
// socket. It unwraps to the errno the kernel would have given.
type destError struct {
	reason string
	addr   netip.AddrPort
	errno  syscall.Errno
}

func (e *destError) Error() string {
	return "batchconn: " + e.reason + ": " + e.addr.String()
}

func (e *destError) Unwrap() error { return e.errno }

// checkDest validates a message's destination for a socket of the given
// family, and returns the address to write into the sockaddr (IPv4 or
// IPv4-mapped IPv6 to match the socket) and the IPv6 scope id, resolving a
// named zone through zones.
func checkDest(a netip.AddrPort, sock4, v6only bool, zones *zoneTable) (netip.Addr, uint32, error) {
	ip := a.Addr()
	switch {
	case !ip.IsValid():
		return ip, 0, &destError{"invalid destination address", a, syscall.EINVAL}
	case a.Port() == 0:
		return ip, 0, &destError{"port 0 is not a valid destination", a, syscall.EINVAL}
	case sock4:
		if !ip.Is4() && !ip.Is4In6() {
			return ip, 0, &destError{"IPv6 destination on an IPv4 socket", a, syscall.EAFNOSUPPORT}
		}
		return ip.Unmap(), 0, nil
	case ip.Is4() || ip.Is4In6():
		if v6only {
			// ENETUNREACH, as sendto(2) gives on Linux for an IPv4 or
			// IPv4-mapped destination (udpv6_sendmsg) and the UDPConn
			// passes on.
			return ip, 0, &destError{"IPv4 destination on an IPv6-only socket", a, syscall.ENETUNREACH}
		}
		return netip.AddrFrom16(ip.As16()), 0, nil
	}
	zone := ip.Zone()
	if zone == "" {
		return ip, 0, nil
	}
	if id, ok := numericZone(zone); ok {
		return ip, id, nil
	}
	id, ok := zones.index(zone)
	if !ok {
		return ip, 0, &destError{"unknown IPv6 zone", a, syscall.EINVAL}
	}
	return ip, id, nil
}

// numericZone parses a zone that is an interface index. Unlike
// strconv.ParseUint it allocates nothing for a name (no *NumError).
func numericZone(zone string) (uint32, bool) {
	var id uint64
	for i := 0; i < len(zone); i++ {
		d := zone[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		if id = id*10 + uint64(d-'0'); id > 1<<32-1 {
			return 0, false
		}
	}
	return uint32(id), zone != ""
}

// A gsoDests remembers destinations whose GSO sends the kernel keeps
// refusing with EINVAL or EMSGSIZE (a path whose MTU is smaller than the
// segments, say), so that those stop getting GSO runs while every other
// destination keeps them (C14). A destination is off after
// maxDestGSOFailures refusals in a row; a GSO send it accepts clears its
// count. An off destination is offered GSO again once gsoRetryDatagrams
// datagrams were sent to it plain or gsoRetryAfter has passed, whichever
// comes first, so that a path whose MTU grows again is not slow for the
// life of the process: one GSO run then, which turns it off again at once
// if refused. Both are exact: every datagram the kernel accepts plain for
// an off destination is counted (sentPlain), and a call that may consult
// the table while a destination is off reads the clock once, up front
// (begin), so the first call after gsoRetryAfter offers GSO whatever its
// size. The table holds gsoDestSlots destinations, replacing them in turn
// when full: a destination that falls out is offered GSO again and costs
// at most maxDestGSOFailures more refused sends, each resent plain at
// once, so a flood of failing destinations costs system calls, never
// datagrams, and never GSO for the others. Only the holder of the write
// gate uses it.
type gsoDests struct {
	e [gsoDestSlots]struct {
		addr  netip.AddrPort
		fails int
		plain int       // datagrams sent to it plain since it went off
		since time.Time // when it went off
	}
	n, next int
	nOff    int       // destinations off now (fails == maxDestGSOFailures)
	now     time.Time // the clock, read by begin while nOff > 0
}

const (
	gsoDestSlots       = 64
	maxDestGSOFailures = 4

	// A retry costs one refused GSO send, resent plain at once: one
	// system call per gsoRetryDatagrams datagrams (under 0.03%) on a path
	// that stays small.
	gsoRetryDatagrams = 4096
	gsoRetryAfter     = 10 * time.Second
)

func (d *gsoDests) find(a netip.AddrPort) int {
	for i := range d.n {
		if d.e[i].addr == a {
			return i
		}
	}
	return -1
}

// begin starts a send call: while a destination is off, it reads the clock
// for off to compare with, once per call rather than per datagram.
func (d *gsoDests) begin() {
	if d.nOff > 0 {
		d.now = time.Now()
	}
}

// off reports whether a datagram to a gets no GSO run; it is asked once per
// datagram that could start one.
func (d *gsoDests) off(a netip.AddrPort) bool {
	if d == nil || d.nOff == 0 {
		return false
	}
	i := d.find(a)
	if i < 0 || d.e[i].fails < maxDestGSOFailures {
		return false
	}
	e := &d.e[i]
	if e.plain < gsoRetryDatagrams && d.now.Sub(e.since) < gsoRetryAfter {
		return true
	}
	// Offer GSO again: one refusal turns it off again.
	e.fails, e.plain = maxDestGSOFailures-1, 0
	d.nOff--
	return false
}

// sentPlain counts a datagram to a that the kernel accepted as a plain
// send; only those to an off destination count towards its retry.
func (d *gsoDests) sentPlain(a netip.AddrPort) {
	if d.nOff == 0 {
		return
	}
	if i := d.find(a); i >= 0 && d.e[i].fails >= maxDestGSOFailures {
		d.e[i].plain++
	}
}

// failed counts a GSO send to a that the kernel refused.
func (d *gsoDests) failed(a netip.AddrPort) {
	i := d.find(a)
	if i < 0 {
		if d.n < gsoDestSlots {
			i = d.n
			d.n++
		} else {
			i = d.next
			d.next = (d.next + 1) % gsoDestSlots
			if d.e[i].fails >= maxDestGSOFailures {
				d.nOff--
			}
		}
		d.e[i].addr, d.e[i].fails = a, 0
	}
	e := &d.e[i]
	e.fails++
	if e.fails == maxDestGSOFailures {
		e.plain, e.since = 0, time.Now()
		d.nOff++
	}
}

// accepted clears a's count after the kernel accepted a GSO send to it.
func (d *gsoDests) accepted(a netip.AddrPort) {
	if d.n == 0 {
		return
	}
	if i := d.find(a); i >= 0 {
		if d.e[i].fails >= maxDestGSOFailures {
			d.nOff--
		}
		d.n--
		d.e[i] = d.e[d.n]
		d.e[d.n].addr = netip.AddrPort{}
		d.next = 0
	}
}
