package batchconn

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
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

// maxGSOSegments is the most datagrams coalesced into one UDP GSO send. The
// kernel's UDP_MAX_SEGMENTS was 64 until 2024 and is 128 since; 64 is safe on
// every kernel that has UDP_SEGMENT at all.
const maxGSOSegments = 64

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
	Addr netip.AddrPort

	// Buffers are, when sending, gathered in order into one datagram: no
	// buffers, or only empty ones, make a valid 0-byte datagram; they are only
	// read. When receiving, the datagram is scattered into them in order, and
	// their lengths are the room. They are not retained after the call.
	Buffers [][]byte

	// OOB holds control messages (cmsgs, as built or parsed by
	// golang.org/x/sys/unix or golang.org/x/net/ipv4). When sending they
	// apply to this datagram only (nil means none) and are passed to the
	// kernel as given; when receiving, OOB's length is the room for them. It
	// is not retained.
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
// never waits and returns [ErrWouldBlock] if nothing could be sent.
//
// flags are passed to the kernel as given (MSG_CONFIRM, MSG_DONTROUTE, ...).
// Errors are *net.OpError values with Op "write"; kernel errors keep their
// *os.SyscallError and errno, so errors.Is(err, syscall.EMSGSIZE) works.
//
// On Linux the messages go out through sendmmsg(2), and runs of equal-size
// messages to one destination are coalesced into UDP GSO sends; none of that
// is observable except in speed. On other platforms each message is one
// system call, with the same results.
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
	if err := c.lock(ctx); err != nil {
		return 0, c.opError(nil, err)
	}
	defer c.unlock()
	wait := c.blocking.Load() && flags&msgDontwait == 0
	n, err := c.send(ctx, msgs, flags, wait)
	c.disarm()
	if n > 0 {
		return n, nil
	}
	return 0, err
}

func noControl(uintptr) {}

// msgLen is the length of the datagram m describes.
func msgLen(m *Message) int {
	n := 0
	for _, b := range m.Buffers {
		n += len(b)
	}
	return n
}

// gather returns m's datagram as one buffer, for the paths that send one
// buffer per message. It copies into *scratch only when m has several
// non-empty parts.
func gather(scratch *[]byte, m *Message) []byte {
	var one []byte
	parts := 0
	for _, b := range m.Buffers {
		if len(b) > 0 {
			one = b
			parts++
		}
	}
	if parts <= 1 {
		return one
	}
	*scratch = (*scratch)[:0]
	for _, b := range m.Buffers {
		*scratch = append(*scratch, b...)
	}
	return *scratch
}

// A plan says how messages map onto the datagram headers handed to the kernel.
// Each header carries one message, or a GSO run of 2 or more messages.
type planner struct {
	gso        bool // coalesce runs at all
	sock4      bool // the socket is AF_INET (else AF_INET6)
	peer4      bool // the connected peer, if any, is IPv4 (or IPv4-mapped)
	maxSegs    int  // segments per GSO run
	plainUntil int  // messages before this index are not coalesced (fallback)
}

// runLen returns how many messages, starting at msgs[i], go out as one header:
// 1 for a plain message, 2 or more for a GSO run. A run is consecutive messages
// with the same Addr and byte-identical OOB without a caller UDP_SEGMENT, all of
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
	limit := maxPayload6
	if p.dest4(first.Addr) {
		limit = maxPayload4
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

// findCmsg walks oob as the kernel does and reports whether it holds a control
// message of the given level and type, and whether oob is well formed.
// Malformed control data is never coalesced: it is passed to the kernel as
// given, which rejects it for that message alone.
func findCmsg(oob []byte, level, typ int32) (found, ok bool) {
	for off := 0; off < len(oob); {
		if len(oob)-off < cmsgHdrLen {
			return found, false
		}
		h := oob[off:]
		var l int
		if cmsgAlign == 8 {
			l = int(binary.NativeEndian.Uint64(h))
		} else {
			l = int(binary.NativeEndian.Uint32(h))
		}
		if l < cmsgHdrLen || l > len(h) {
			return found, false
		}
		lv := int32(binary.NativeEndian.Uint32(h[cmsgAlign:]))
		ty := int32(binary.NativeEndian.Uint32(h[cmsgAlign+4:]))
		if lv == level && ty == typ {
			found = true
		}
		off += cmsgAlignUp(l)
	}
	return found, true
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
// IPv4-mapped IPv6 to match the socket) and the IPv6 scope id.
func checkDest(a netip.AddrPort, sock4, v6only bool) (netip.Addr, uint32, error) {
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
			return ip, 0, &destError{"IPv4 destination on an IPv6-only socket", a, syscall.EAFNOSUPPORT}
		}
		return netip.AddrFrom16(ip.As16()), 0, nil
	}
	zone := ip.Zone()
	if zone == "" {
		return ip, 0, nil
	}
	if id, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return ip, uint32(id), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return ip, 0, &destError{"unknown IPv6 zone", a, syscall.EINVAL}
	}
	return ip, uint32(ifi.Index), nil
}
