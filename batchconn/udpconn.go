package batchconn

import (
	"net"
	"net/netip"
	"os"
)

// The rest of *net.UDPConn's method set, so a Conn can stand in for the
// socket it wraps wherever a *net.UDPConn's methods are looked for (x/net's
// ipv4.NewPacketConn, quic-go, pion). Reads on a Conn with GRO on are served
// from the Conn's receive batch, so they see one datagram per call; with GRO
// off they are the UDPConn's own. Writes are combined with the Conn's other
// writers (group commit, see [Conn.Write]).

var _ interface {
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	ReadFromUDP(b []byte) (int, *net.UDPAddr, error)
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error)
	WriteToUDP(b []byte, addr *net.UDPAddr) (int, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error)
	File() (*os.File, error)
} = (*Conn)(nil)

// Read reads one datagram, as [net.UDPConn.Read]: a read into an empty b
// returns at once and consumes nothing.
func (c *Conn) Read(b []byte) (int, error) {
	if !c.batchReads || len(b) == 0 {
		return c.udp.Read(b)
	}
	n, _, _, _, _, err := c.readOne(b, nil, false, "read")
	return n, err
}

// ReadFromUDP reads one datagram, as [net.UDPConn.ReadFromUDP], and, as
// it, lets an inlining caller keep the *net.UDPAddr on its stack: a read
// allocates only the address's bytes.
func (c *Conn) ReadFromUDP(b []byte) (n int, addr *net.UDPAddr, err error) {
	return c.readFromUDP(b, &net.UDPAddr{})
}

// readFromUDP is ReadFromUDP, into addr.
func (c *Conn) readFromUDP(b []byte, addr *net.UDPAddr) (int, *net.UDPAddr, error) {
	var n int
	var ap netip.AddrPort
	var err error
	if c.batchReads {
		n, _, _, ap, _, err = c.readOne(b, nil, false, "recvfrom")
	} else {
		n, ap, err = c.udp.ReadFromUDPAddrPort(b)
	}
	if err != nil {
		return n, nil, err
	}
	ip := ap.Addr()
	*addr = net.UDPAddr{IP: ip.AsSlice(), Port: int(ap.Port()), Zone: ip.Zone()}
	return n, addr, nil
}

// ReadFromUDPAddrPort reads one datagram, as
// [net.UDPConn.ReadFromUDPAddrPort].
func (c *Conn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	if !c.batchReads {
		return c.udp.ReadFromUDPAddrPort(b)
	}
	n, _, _, src, _, err := c.readOne(b, nil, false, "recvfrom")
	return n, src, err
}

// ReadMsgUDPAddrPort reads one datagram and its control messages, as
// [net.UDPConn.ReadMsgUDPAddrPort].
func (c *Conn) ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error) {
	if !c.batchReads {
		return c.udp.ReadMsgUDPAddrPort(b, oob)
	}
	n, oobn, flags, addr, _, err = c.readOne(b, oob, false, "recvmsg")
	if err != nil {
		addr = c.noSource() // as the UDPConn reports a failed read's source
	}
	return n, oobn, flags, addr, err
}

// Write writes one datagram to the connected peer, as [net.UDPConn.Write],
// with the same result and errors.
//
// The single-datagram write methods (Write, WriteTo, WriteToUDP,
// WriteToUDPAddrPort, WriteMsgUDP, WriteMsgUDPAddrPort) use group commit: a
// writer that finds no send in flight sends its own datagram at once, with
// the UDPConn's own method (one system call, nothing added); writers that
// arrive while a send is in flight wait, uncopied, and the next of them
// sends all of them in one sendmmsg (on Linux, with UDP GSO runs where
// destinations and sizes allow). Each writer gets its own n and error,
// shaped as the UDPConn's. A datagram that fails fails alone: the others of
// its batch are still sent. A waiting datagram is sent only by a send that
// starts before the write deadline and before Close; when the deadline
// passes or the Conn is closed first, it fails with os.ErrDeadlineExceeded
// or net.ErrClosed and is never sent later. No copies, timers or goroutines
// are involved, and nothing is allocated per write.
func (c *Conn) Write(b []byte) (int, error) {
	if c.sendPlain() {
		n, err := c.udp.Write(b)
		c.unlock()
		return n, err
	}
	q := &queued{} // on the stack: write copies it where it must outlive the call
	q.kind, q.b = kindWrite, b
	q.direct = c.udp.RemoteAddr() == nil // EDESTADDRREQ, as the UDPConn says it
	c.write(q)
	n, err := q.n, q.err
	return n, err
}

// WriteToUDP writes one datagram, as [net.UDPConn.WriteToUDP], combined with
// concurrent writers as [Conn.Write] is.
func (c *Conn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if c.sendPlain() {
		n, err := c.udp.WriteToUDP(b, addr)
		c.unlock()
		return n, err
	}
	q := &queued{} // on the stack: write copies it where it must outlive the call
	q.kind, q.b, q.uaddr = kindWriteToUDP, b, addr
	var ok bool
	q.dst, ok = c.udpAddrPort(addr)
	q.direct = !ok
	c.write(q)
	n, err := q.n, q.err
	return n, err
}

// WriteToUDPAddrPort writes one datagram, as [net.UDPConn.WriteToUDPAddrPort],
// combined with concurrent writers as [Conn.Write] is.
func (c *Conn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if c.sendPlain() {
		n, err := c.udp.WriteToUDPAddrPort(b, addr)
		c.unlock()
		return n, err
	}
	q := &queued{} // on the stack: write copies it where it must outlive the call
	q.kind, q.b, q.ap, q.dst = kindWriteToUDPAddrPort, b, addr, addr
	q.direct = !c.batchDest(addr, false)
	c.write(q)
	n, err := q.n, q.err
	return n, err
}

// WriteMsgUDPAddrPort writes one datagram with control messages, as
// [net.UDPConn.WriteMsgUDPAddrPort], combined with concurrent writers as
// [Conn.Write] is.
func (c *Conn) WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error) {
	if c.sendPlain() {
		n, oobn, err = c.udp.WriteMsgUDPAddrPort(b, oob, addr)
		c.unlock()
		return n, oobn, err
	}
	q := &queued{} // on the stack: write copies it where it must outlive the call
	q.kind, q.b, q.oob, q.ap, q.dst = kindWriteMsgUDPAddrPort, b, oob, addr, addr
	toPeer := !addr.IsValid() && c.udp.RemoteAddr() != nil
	q.direct = !(toPeer || c.batchDest(addr, false)) || !plainOOB(oob)
	c.write(q)
	n, oobn, err = q.n, q.oobn, q.err
	return n, oobn, err
}

// File returns a copy of the socket's file descriptor, as
// [net.UDPConn.File]. Reading from it bypasses the Conn: with GRO on it
// would see coalesced buffers (see [WithGRO]).
func (c *Conn) File() (*os.File, error) { return c.udp.File() }
